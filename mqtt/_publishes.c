/* Whole QoS 0/1 PUBLISH packets cut from the fast path's read buffer in C: mqtt/fast.py says
 * why.
 *
 * publishes(buffer, pos, v5) -> (list of (topic, payload, packet id, qos), pos)
 *
 * From `pos`, each packet that is a PUBLISH at QoS 0 or 1, lies whole in the buffer and is
 * well formed (its topic, packet id and MQTT 5 property lengths inside its body) is taken; the
 * first one that is anything else - another packet type, QoS 2, cut by the end of the buffer,
 * a length that does not add up - stops the run, and `pos` is where it starts, so the Python
 * loop handles it exactly as before (acks, paho's reader, a protocol error). The topic is
 * decoded as UTF-8 with replacement, as `mqtt.packets.parse_publish` does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* A variable byte integer at data[pos]: its value, or -1 when cut by `stop`, -2 when longer
 * than four bytes. */
static Py_ssize_t varint(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t stop) {
    Py_ssize_t value = 0;
    for (int shift = 0; shift <= 21; shift += 7) {
        if (*pos >= stop) {
            return -1;
        }
        unsigned char byte = data[(*pos)++];
        value |= (Py_ssize_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            return value;
        }
    }
    return -2;
}

static PyObject *publishes(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer view;
    Py_ssize_t pos;
    int v5;
    if (!PyArg_ParseTuple(args, "y*np:publishes", &view, &pos, &v5)) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t end = view.len;
    if (pos < 0 || pos > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos is outside the buffer");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    while (pos < end) {
        unsigned char header = data[pos];
        int qos = (header & 0x06) >> 1;
        if ((header & 0xF0) != 0x30 || qos > 1) {
            break;
        }
        Py_ssize_t at = pos + 1;
        Py_ssize_t length = varint(data, &at, end);
        if (length < 0 || length > end - at) {
            break; /* cut, or too long a length: the Python loop's */
        }
        Py_ssize_t body = at, stop = at + length;
        if (stop - body < 2) {
            break;
        }
        Py_ssize_t topic_end = body + 2 + ((Py_ssize_t)data[body] << 8 | data[body + 1]);
        if (topic_end > stop) {
            break;
        }
        Py_ssize_t cursor = topic_end;
        long mid = 0;
        if (qos) {
            if (stop - cursor < 2) {
                break;
            }
            mid = (long)data[cursor] << 8 | data[cursor + 1];
            cursor += 2;
        }
        if (v5) {
            Py_ssize_t properties = varint(data, &cursor, stop);
            if (properties < 0 || properties > stop - cursor) {
                break;
            }
            cursor += properties;
        }
        PyObject *topic = PyUnicode_DecodeUTF8((const char *)data + body + 2,
                                               topic_end - body - 2, "replace");
        PyObject *payload = topic ? PyBytes_FromStringAndSize((const char *)data + cursor,
                                                              stop - cursor)
                                  : NULL;
        PyObject *item = payload ? Py_BuildValue("(NNli)", topic, payload, mid, qos) : NULL;
        if (item == NULL) {
            if (payload == NULL) {
                Py_XDECREF(topic);
            }
            Py_DECREF(out);
            PyBuffer_Release(&view);
            return NULL;
        }
        if (PyList_Append(out, item) < 0) {
            Py_DECREF(item);
            Py_DECREF(out);
            PyBuffer_Release(&view);
            return NULL;
        }
        Py_DECREF(item);
        pos = stop;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", out, pos);
}

static PyMethodDef methods[] = {
    {"publishes", publishes, METH_VARARGS,
     "publishes(buffer, pos, v5) -> (list of (topic, payload, mid, qos), pos)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mqtt._publishes", "Whole PUBLISH packets cut from a buffer, in C.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__publishes(void) { return PyModule_Create(&module); }
