/* The usual telemetry message straight into float64 rows: gateway/json_rows.py says why.
 *
 * rows(payloads, columns) -> (rows: bytes, counts: bytes)
 *
 * `columns` is a tuple of the kind's column names as bytes, `ts` and `seq` first. Each payload
 * is parsed as strict JSON of one of two shapes, whitespace allowed between tokens:
 *
 *     {"ts": <int>, "seq": <int>, "<field>": <value>, ...}
 *     {"readings": [{...}, {...}, ...]}
 *
 * where every reading names each column exactly once (any order), `ts` and `seq` are integers
 * of at most 2**53 in size, and a field's value is a number, true, false or null. Such a
 * payload's readings become rows of doubles, in column order (true 1, false 0, null NaN).
 * Anything else - another key, a key with an escape, a string, nesting, a missing or repeated
 * column, a fraction or exponent in ts or seq, a number JSON does not allow, one that is not
 * finite as a double, trailing bytes - makes the payload "not the usual message": count -1,
 * no rows. The caller then takes its general path, which names the reason; this parser never
 * decides what is rejected, only what is accepted without Python objects per value.
 *
 * `counts` holds one int64 per payload: its number of rows, or -1.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_COLUMNS 64
#define MAX_NUMBER 63
#define EXACT_INT 9007199254740992LL /* 2**53 */

typedef struct {
    double *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Rows;

typedef struct {
    const char *name[MAX_COLUMNS];
    Py_ssize_t size[MAX_COLUMNS];
    int count;
} Columns;

static int grow(Rows *rows, Py_ssize_t extra) {
    if (rows->length + extra <= rows->capacity) {
        return 0;
    }
    Py_ssize_t capacity = rows->capacity ? rows->capacity : 4096;
    while (capacity < rows->length + extra) {
        if (capacity > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(double)) {
            return -1;
        }
        capacity *= 2;
    }
    double *data = PyMem_Realloc(rows->data, (size_t)capacity * sizeof(double));
    if (data == NULL) {
        return -1;
    }
    rows->data = data;
    rows->capacity = capacity;
    return 0;
}

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The end of a JSON number at p (or NULL when it is not one), and whether it is an integer
 * (no fraction, no exponent). */
static const char *number_end(const char *p, const char *end, int *integral) {
    const char *q = p;
    *integral = 1;
    if (q < end && *q == '-') {
        q++;
    }
    if (q >= end || !is_digit(*q)) {
        return NULL;
    }
    if (*q == '0') {
        q++;
    } else {
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    if (q < end && *q == '.') {
        *integral = 0;
        q++;
        if (q >= end || !is_digit(*q)) {
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        *integral = 0;
        q++;
        if (q < end && (*q == '+' || *q == '-')) {
            q++;
        }
        if (q >= end || !is_digit(*q)) {
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    return q;
}

static const double POWERS[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A JSON number [p, q) as the nearest double. Up to 15 significant digits and a power of ten
 * up to 22 is one exact integer and one correctly rounded multiply or divide (both operands
 * exact doubles: Clinger's fast path); anything else goes to CPython's correctly rounded
 * strtod. Returns 0, or -1 when the text is too long or does not convert. */
static int to_double(const char *p, const char *q, double *out) {
    const char *s = p;
    int negative = 0;
    if (*s == '-') {
        negative = 1;
        s++;
    }
    uint64_t mantissa = 0;
    int digits = 0;
    int scale = 0;
    int fast = 1;
    while (s < q && is_digit(*s)) {
        if (mantissa || *s != '0') {
            digits++;
        }
        mantissa = mantissa * 10 + (uint64_t)(*s - '0');
        if (digits > 15) {
            fast = 0;
            break;
        }
        s++;
    }
    if (fast && s < q && *s == '.') {
        s++;
        while (s < q && is_digit(*s)) {
            if (mantissa || *s != '0') {
                digits++;
            }
            mantissa = mantissa * 10 + (uint64_t)(*s - '0');
            scale--;
            if (digits > 15 || scale < -400) {
                fast = 0;
                break;
            }
            s++;
        }
    }
    if (fast && s < q && (*s == 'e' || *s == 'E')) {
        s++;
        int sign = 1;
        if (*s == '+' || *s == '-') {
            sign = *s == '-' ? -1 : 1;
            s++;
        }
        int exponent = 0;
        while (s < q && is_digit(*s)) {
            if (exponent > 1000) {
                fast = 0;
                break;
            }
            exponent = exponent * 10 + (*s - '0');
            s++;
        }
        scale += sign * exponent;
    }
#if FLT_EVAL_METHOD != 0
    fast = 0; /* extended-precision intermediates (x87) could round twice */
#endif
    if (fast && s == q && scale >= -22 && scale <= 22) {
        double value = (double)mantissa;
        value = scale < 0 ? value / POWERS[-scale] : value * POWERS[scale];
        *out = negative ? -value : value;
        return 0;
    }
    char text[MAX_NUMBER + 1];
    Py_ssize_t length = q - p;
    if (length > MAX_NUMBER) {
        return -1;
    }
    memcpy(text, p, (size_t)length);
    text[length] = '\0';
    char *stop = NULL;
    double value = PyOS_string_to_double(text, &stop, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (stop != text + length) {
        return -1;
    }
    *out = value;
    return 0;
}

/* ts or seq: an integer of at most 2**53 in size. */
static const char *parse_integer(const char *p, const char *end, double *out) {
    int integral;
    const char *q = number_end(p, end, &integral);
    if (q == NULL || !integral || q - p > 17) {
        return NULL;
    }
    const char *s = p;
    int negative = *s == '-';
    if (negative) {
        s++;
    }
    long long value = 0;
    for (; s < q; s++) {
        value = value * 10 + (*s - '0');
    }
    if (value > EXACT_INT) {
        return NULL;
    }
    *out = (double)(negative ? -value : value); /* "-0" is the integer 0 */
    return q;
}

static const char *parse_value(const char *p, const char *end, double *out) {
    if (p >= end) {
        return NULL;
    }
    if (*p == 't') {
        if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
            *out = 1.0;
            return p + 4;
        }
        return NULL;
    }
    if (*p == 'f') {
        if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
            *out = 0.0;
            return p + 5;
        }
        return NULL;
    }
    if (*p == 'n') {
        if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            *out = Py_NAN;
            return p + 4;
        }
        return NULL;
    }
    int integral;
    const char *q = number_end(p, end, &integral);
    if (q == NULL || to_double(p, q, out) < 0 || !isfinite(*out)) {
        return NULL;
    }
    if (integral && *out == 0.0) {
        *out = 0.0; /* "-0" is the integer 0, as JSON readers read it; "-0.0" stays -0.0 */
    }
    return q;
}

/* One reading object at p into row; the position after it, or NULL. */
static const char *parse_reading(const char *p, const char *end, const Columns *columns,
                                 double *row) {
    uint64_t seen = 0;
    p = skip_space(p, end);
    if (p >= end || *p != '{') {
        return NULL;
    }
    p = skip_space(p + 1, end);
    for (;;) {
        if (p >= end || *p != '"') {
            return NULL;
        }
        const char *key = ++p;
        while (p < end && *p != '"') {
            if (*p == '\\' || (unsigned char)*p < 0x20) {
                return NULL;
            }
            p++;
        }
        if (p >= end) {
            return NULL;
        }
        Py_ssize_t size = p - key;
        int column = -1;
        for (int i = 0; i < columns->count; i++) {
            if (columns->size[i] == size && memcmp(columns->name[i], key, (size_t)size) == 0) {
                column = i;
                break;
            }
        }
        if (column < 0 || (seen >> column) & 1) {
            return NULL;
        }
        seen |= (uint64_t)1 << column;
        p = skip_space(p + 1, end);
        if (p >= end || *p != ':') {
            return NULL;
        }
        p = skip_space(p + 1, end);
        p = column < 2 ? parse_integer(p, end, &row[column])
                       : parse_value(p, end, &row[column]);
        if (p == NULL) {
            return NULL;
        }
        p = skip_space(p, end);
        if (p < end && *p == ',') {
            p = skip_space(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            break;
        }
        return NULL;
    }
    uint64_t all = columns->count == 64 ? ~(uint64_t)0 : ((uint64_t)1 << columns->count) - 1;
    return seen == all ? p + 1 : NULL;
}

static const char READINGS[] = "\"readings\"";

/* A payload's readings appended to rows: their count, or -1 (rows as before). */
static Py_ssize_t parse_payload(const char *p, const char *end, const Columns *columns,
                                Rows *rows, int *failed) {
    Py_ssize_t width = columns->count;
    Py_ssize_t start = rows->length;
    Py_ssize_t count = 0;
    const char *q = skip_space(p, end);
    if (q < end && *q == '{') {
        const char *k = skip_space(q + 1, end);
        Py_ssize_t size = (Py_ssize_t)sizeof(READINGS) - 1;
        if (end - k >= size && memcmp(k, READINGS, (size_t)size) == 0) {
            k = skip_space(k + size, end);
            if (k >= end || *k != ':') {
                return -1;
            }
            k = skip_space(k + 1, end);
            if (k >= end || *k != '[') {
                return -1;
            }
            k = k + 1;
            for (;;) {
                if (grow(rows, width) < 0) {
                    *failed = 1;
                    return -1;
                }
                k = parse_reading(k, end, columns, rows->data + rows->length);
                if (k == NULL) {
                    rows->length = start;
                    return -1;
                }
                rows->length += width;
                count++;
                k = skip_space(k, end);
                if (k < end && *k == ',') {
                    k++;
                    continue;
                }
                break;
            }
            if (k >= end || *k != ']') {
                rows->length = start;
                return -1;
            }
            k = skip_space(k + 1, end);
            if (k >= end || *k != '}' || skip_space(k + 1, end) != end) {
                rows->length = start;
                return -1;
            }
            return count;
        }
    }
    if (grow(rows, width) < 0) {
        *failed = 1;
        return -1;
    }
    q = parse_reading(q, end, columns, rows->data + rows->length);
    if (q == NULL || skip_space(q, end) != end) {
        return -1;
    }
    rows->length += width;
    return 1;
}

static PyObject *json_rows(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *payloads;
    PyObject *names;
    if (!PyArg_ParseTuple(args, "O!O!:rows", &PyList_Type, &payloads, &PyTuple_Type, &names)) {
        return NULL;
    }
    Columns columns;
    columns.count = (int)PyTuple_GET_SIZE(names);
    if (columns.count < 3 || columns.count > MAX_COLUMNS) {
        PyErr_SetString(PyExc_ValueError, "columns: ts, seq and 1 to 62 fields");
        return NULL;
    }
    for (int i = 0; i < columns.count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "column names must be bytes");
            return NULL;
        }
        columns.name[i] = PyBytes_AS_STRING(name);
        columns.size[i] = PyBytes_GET_SIZE(name);
    }
    Py_ssize_t n = PyList_GET_SIZE(payloads);
    PyObject *counts = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    if (counts == NULL) {
        return NULL;
    }
    int64_t *count = (int64_t *)PyBytes_AS_STRING(counts);
    Rows rows = {NULL, 0, 0};
    int failed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *payload = PyList_GET_ITEM(payloads, i);
        if (!PyBytes_Check(payload)) {
            count[i] = -1;
            continue;
        }
        const char *p = PyBytes_AS_STRING(payload);
        count[i] = parse_payload(p, p + PyBytes_GET_SIZE(payload), &columns, &rows, &failed);
        if (failed) {
            PyMem_Free(rows.data);
            Py_DECREF(counts);
            return PyErr_NoMemory();
        }
    }
    PyObject *data =
        PyBytes_FromStringAndSize((const char *)rows.data, rows.length * (Py_ssize_t)sizeof(double));
    PyMem_Free(rows.data);
    if (data == NULL) {
        Py_DECREF(counts);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, data, counts);
    Py_DECREF(data);
    Py_DECREF(counts);
    return result;
}

static PyMethodDef methods[] = {
    {"rows", json_rows, METH_VARARGS,
     "rows(payloads: list[bytes], columns: tuple[bytes, ...]) -> (rows, counts)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "gateway._json_rows", "The usual message into float64 rows, in C.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__json_rows(void) { return PyModule_Create(&module); }
