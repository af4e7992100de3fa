/* What the rules' C walks share (alerts/_windows.c, alerts/_episodes.c): borrowing the
 * caller's numpy arrays as buffers, checked for item size and length, and the rows' devices,
 * checked to lie in the state and in device order, so no walk reads memory it does not own. */
#ifndef FACILITY_ALERTS_ROWS_H
#define FACILITY_ALERTS_ROWS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define NEVER (-(INT64_C(1) << 61)) /* alerts.rule_language.NEVER: no time */

/* The buffers of one call, released together. */
typedef struct {
    Py_buffer view[16];
    int used;
} Views;

static void release(Views *views) {
    for (int i = 0; i < views->used; i++) {
        PyBuffer_Release(&views->view[i]);
    }
    views->used = 0;
}

/* `obj` as a C-contiguous buffer of `count` items of `itemsize` bytes (count < 0: any). */
static void *take(Views *views, PyObject *obj, Py_ssize_t itemsize, Py_ssize_t count,
                  int writable, const char *name) {
    Py_buffer *view = &views->view[views->used];
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return NULL;
    }
    views->used++;
    if (view->itemsize != itemsize || (count >= 0 && view->len != count * itemsize)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes", name, count,
                     itemsize);
        return NULL;
    }
    return view->buf;
}

/* The device rows as int64 (int32 or int64 given), each checked against the state's size. */
typedef struct {
    const void *data;
    int wide;
} Devices;

static inline int64_t device_at(const Devices *d, Py_ssize_t i) {
    return d->wide ? ((const int64_t *)d->data)[i] : (int64_t)((const int32_t *)d->data)[i];
}

static int take_devices(Views *views, PyObject *obj, Py_ssize_t *rows, Py_ssize_t devices,
                        Devices *out) {
    Py_buffer *view = &views->view[views->used];
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    views->used++;
    if (view->itemsize != 4 && view->itemsize != 8) {
        PyErr_SetString(PyExc_ValueError, "device: expected int32 or int64 rows");
        return -1;
    }
    out->data = view->buf;
    out->wide = view->itemsize == 8;
    *rows = view->len / view->itemsize;
    for (Py_ssize_t i = 0; i < *rows; i++) {
        int64_t d = device_at(out, i);
        if (d < 0 || d >= devices) {
            PyErr_Format(PyExc_IndexError, "device %lld outside the state's %zd devices",
                         (long long)d, devices);
            return -1;
        }
        if (i > 0 && d < device_at(out, i - 1)) {
            PyErr_SetString(PyExc_ValueError, "rows are not in device order");
            return -1;
        }
    }
    return 0;
}

/* The module's NEVER, for the tests to hold against alerts.rule_language.NEVER. */
static PyObject *with_never(PyObject *module) {
    if (module != NULL && PyModule_AddObject(module, "NEVER", PyLong_FromLongLong(NEVER)) < 0) {
        Py_CLEAR(module);
    }
    return module;
}

#endif
