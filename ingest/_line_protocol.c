/* InfluxDB line protocol of one kind's batch, in C: ingest/line_protocol.py says why.
 *
 * lines(keys, device, ts, values, fields) -> list[bytes]
 *
 * keys:   list of each device's series key (measurement and tags, escaped), by device row
 * device: int32 buffer, a device row per reading
 * ts:     int64 buffer, ms per reading
 * values: float64 buffer, field by field: each field's value per reading, then the next
 *         field's (the batch's column-major matrix as the decoder makes it, transposed
 *         without a copy); NaN = not reported: the field is left out, and a reading with
 *         none gives no line
 * fields: tuple of (b"<escaped name>=", type) per column; type 0 float, 1 integer (written
 *         with the `i` suffix), 2 boolean (true above 0.5)
 *
 * A float is written as the shortest decimal that reads back as the same double, in the
 * notation orjson uses for it (what the Python encoder wrote before): fixed from 1e-5 up to
 * 1e16 (with a ".0" when whole); below and above, CPython's shortest repr ("1e-07",
 * "1.2345678901234568e+18"), which InfluxDB reads as well. Up to 15 significant digits are
 * found here; more come from CPython's repr, laid out fixed below 1e-4 where repr is not.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_FIELDS 64

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Text;

static int reserve(Text *text, Py_ssize_t extra) {
    if (text->length + extra <= text->capacity) {
        return 0;
    }
    Py_ssize_t capacity = text->capacity ? text->capacity : 1024;
    while (capacity < text->length + extra) {
        if (capacity > PY_SSIZE_T_MAX / 2) {
            return -1;
        }
        capacity *= 2;
    }
    char *data = PyMem_Realloc(text->data, (size_t)capacity);
    if (data == NULL) {
        return -1;
    }
    text->data = data;
    text->capacity = capacity;
    return 0;
}

static int append(Text *text, const char *bytes, Py_ssize_t size) {
    if (reserve(text, size) < 0) {
        return -1;
    }
    memcpy(text->data + text->length, bytes, (size_t)size);
    text->length += size;
    return 0;
}

/* Decimal digits of an integer (any sign) into out; their count. */
static int integer_text(long long value, char *out) {
    char digits[24];
    int count = 0;
    unsigned long long magnitude =
        value < 0 ? (unsigned long long)(-(value + 1)) + 1 : (unsigned long long)value;
    do {
        digits[count++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    int at = 0;
    if (value < 0) {
        out[at++] = '-';
    }
    while (count) {
        out[at++] = digits[--count];
    }
    return at;
}

static const double POWERS[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The shortest fixed decimal of value with k digits after the point that reads back as it:
 * r = value * 10**k rounded to a whole number, |r| < 1e15 (so r and 10**k are exact and r / 10**k is the one
 * correctly rounded division a reader does); the first k that works has the fewest digits,
 * and with under 16 digits no other string of that length reads back as the same double. */
static int fixed_text(double value, char *out) {
#if FLT_EVAL_METHOD != 0
    return -1; /* extended-precision intermediates (x87) could round twice: repr only */
#endif
    double magnitude = fabs(value);
    /* whole numbers and rounding by a cast (one instruction; nearbyint is a libm call on the
     * baseline x86-64): every |x| here is under 1e16, inside long long */
    if (magnitude < 1e16 && (double)(long long)value == value) {
        if (value == 0.0) {
            return signbit(value) ? (memcpy(out, "-0.0", 4), 4) : (memcpy(out, "0.0", 3), 3);
        }
        int at = integer_text((long long)value, out);
        memcpy(out + at, ".0", 2);
        return at + 2;
    }
    if (magnitude < 1e-5) {
        return -1;
    }
    for (int k = 1; k <= 22; k++) {
        double scaled = value * POWERS[k];
        if (fabs(scaled) >= 1e15) {
            return -1;
        }
        double r = (double)(long long)(scaled + (scaled < 0 ? -0.5 : 0.5));
        /* the right k leaves scaled within a few ulps of a whole number: other k's are passed
         * over without the division (a filter only: the division decides) */
        if (fabs(scaled - r) > fabs(scaled) * 1e-15 || r / POWERS[k] != value) {
            continue;
        }
        char digits[24];
        long long whole = (long long)fabs(r);
        int count = integer_text(whole, digits);
        int at = 0;
        if (value < 0) {
            out[at++] = '-';
        }
        if (count <= k) {
            out[at++] = '0';
            out[at++] = '.';
            for (int z = 0; z < k - count; z++) {
                out[at++] = '0';
            }
            memcpy(out + at, digits, (size_t)count);
            return at + count;
        }
        memcpy(out + at, digits, (size_t)(count - k));
        at += count - k;
        out[at++] = '.';
        memcpy(out + at, digits + count - k, (size_t)k);
        return at + k;
    }
    return -1;
}

static int float_text(Text *text, double value) {
    char out[64];
    int size = fixed_text(value, out);
    if (size >= 0) {
        return append(text, out, size);
    }
    char *repr = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (repr == NULL) {
        return -1;
    }
    int result;
    double magnitude = fabs(value);
    if (magnitude >= 1e-5 && magnitude < 1e-4) {
        /* repr writes these with an exponent ("6.881506350319426e-05"), orjson in fixed
         * notation: the same shortest digits after "0.0000" */
        const char *d = repr[0] == '-' ? repr + 1 : repr;
        char fixed[64];
        int at = 0;
        if (value < 0) {
            fixed[at++] = '-';
        }
        memcpy(fixed + at, "0.0000", 6);
        at += 6;
        for (; *d && *d != 'e' && at < 60; d++) {
            if (*d != '.') {
                fixed[at++] = *d;
            }
        }
        result = strcmp(d, "e-05") == 0 ? append(text, fixed, at) : append(text, repr, (Py_ssize_t)strlen(repr));
    } else {
        result = append(text, repr, (Py_ssize_t)strlen(repr));
    }
    PyMem_Free(repr);
    return result;
}

typedef struct {
    const char *prefix[MAX_FIELDS];
    Py_ssize_t size[MAX_FIELDS];
    int type[MAX_FIELDS];
    int count;
} Fields;

static PyObject *encode_lines(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *keys;
    PyObject *fields_arg;
    Py_buffer device = {0}, ts = {0}, values = {0};
    int joined = 0;
    if (!PyArg_ParseTuple(args, "O!y*y*y*O!|p:lines", &PyList_Type, &keys, &device, &ts, &values,
                          &PyTuple_Type, &fields_arg, &joined)) {
        return NULL;
    }
    Py_ssize_t lines = 0;
    PyObject *result = NULL;
    Text text = {NULL, 0, 0};
    Fields fields;
    fields.count = (int)PyTuple_GET_SIZE(fields_arg);
    Py_ssize_t n = ts.len / (Py_ssize_t)sizeof(int64_t);
    if (fields.count < 1 || fields.count > MAX_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "fields: 1 to 64");
        goto done;
    }
    if (ts.len % (Py_ssize_t)sizeof(int64_t) != 0 || device.len != n * (Py_ssize_t)sizeof(int32_t) ||
        values.len != n * fields.count * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "device, ts and values differ in length");
        goto done;
    }
    for (int i = 0; i < fields.count; i++) {
        PyObject *field = PyTuple_GET_ITEM(fields_arg, i);
        if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2 ||
            !PyBytes_Check(PyTuple_GET_ITEM(field, 0)) || !PyLong_Check(PyTuple_GET_ITEM(field, 1))) {
            PyErr_SetString(PyExc_TypeError, "a field is (bytes prefix, int type)");
            goto done;
        }
        fields.prefix[i] = PyBytes_AS_STRING(PyTuple_GET_ITEM(field, 0));
        fields.size[i] = PyBytes_GET_SIZE(PyTuple_GET_ITEM(field, 0));
        long type = PyLong_AsLong(PyTuple_GET_ITEM(field, 1));
        if (type < 0 || type > 2) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "a field's type is 0 float, 1 integer or 2 boolean");
            }
            goto done;
        }
        fields.type[i] = (int)type;
    }
    Py_ssize_t key_count = PyList_GET_SIZE(keys);
    for (Py_ssize_t i = 0; i < key_count; i++) {
        if (!PyBytes_Check(PyList_GET_ITEM(keys, i))) {
            PyErr_SetString(PyExc_TypeError, "series keys must be bytes");
            goto done;
        }
    }
    const int32_t *dev = (const int32_t *)device.buf;
    const int64_t *when = (const int64_t *)ts.buf;
    const double *value = (const double *)values.buf;
    result = joined ? NULL : PyList_New(0);
    if (!joined && result == NULL) {
        goto done;
    }
    for (Py_ssize_t row = 0; row < n; row++) {
        if (dev[row] < 0 || dev[row] >= key_count) {
            PyErr_SetString(PyExc_IndexError, "a device row has no series key");
            Py_CLEAR(result);
            goto done;
        }
        PyObject *key = PyList_GET_ITEM(keys, dev[row]);
        /* joined: the lines follow one another in one text, "\n" between them; a reading
           with no field is taken back to where its line began */
        Py_ssize_t line_start = joined ? text.length : 0;
        text.length = line_start;
        if (joined && lines > 0 && append(&text, "\n", 1) < 0) {
            goto failed;
        }
        if (append(&text, PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)) < 0) {
            goto failed;
        }
        int written = 0;
        const double *cells = value + row; /* column c at cells[c * n] */
        for (int c = 0; c < fields.count; c++) {
            double v = cells[c * n];
            if (isnan(v)) {
                continue;
            }
            if (append(&text, written ? "," : " ", 1) < 0 ||
                append(&text, fields.prefix[c], fields.size[c]) < 0) {
                goto failed;
            }
            written = 1;
            if (fields.type[c] == 2) {
                if (v > 0.5 ? append(&text, "true", 4) : append(&text, "false", 5)) {
                    goto failed;
                }
            } else if (fields.type[c] == 1) {
                if (!(fabs(v) < 9.2e18)) {
                    PyErr_SetString(PyExc_ValueError, "an integer field's value is outside int64");
                    goto failed;
                }
                char out[32];
                int size = integer_text((long long)v, out);
                out[size++] = 'i';
                if (append(&text, out, size) < 0) {
                    goto failed;
                }
            } else if (float_text(&text, v) < 0) {
                goto failed;
            }
        }
        if (!written) {
            text.length = line_start;
            continue;
        }
        char out[32];
        out[0] = ' ';
        int size = 1 + integer_text((long long)when[row], out + 1);
        if (append(&text, out, size) < 0) {
            goto failed;
        }
        lines++;
        if (joined) {
            continue;
        }
        PyObject *line = PyBytes_FromStringAndSize(text.data, text.length);
        if (line == NULL || PyList_Append(result, line) < 0) {
            Py_XDECREF(line);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(line);
    }
    if (joined) {
        result = Py_BuildValue("(y#n)", text.data != NULL ? text.data : "", text.length, lines);
    }
    goto done;
failed:
    Py_CLEAR(result);
    if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
done:
    PyMem_Free(text.data);
    PyBuffer_Release(&device);
    PyBuffer_Release(&ts);
    PyBuffer_Release(&values);
    return result;
}

static PyMethodDef methods[] = {
    {"lines", encode_lines, METH_VARARGS,
     "lines(keys, device, ts, values, fields, joined=False) -> list[bytes]: one kind's line "
     "protocol; joined: (bytes, line count), the lines one after another, \"\\n\" between"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ingest._line_protocol", "Line protocol of a kind's batch, in C.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__line_protocol(void) { return PyModule_Create(&module); }
