/* A plain rule's episodes walked device by device in C: alerts/rule_episodes.py says why.
 *
 * episodes(for_ms, clear_for_ms, gap_ms, device, ts, eff, clear, allowed,
 *          since_ms, clear_since_ms, active, reported, last_clear_ms)
 *     -> (opens, started, flaps, clears, ends, since, clear_since, active, last_clear)
 *
 * For a rule with no hold, cool-down or repeat, over rows in (device, time) order (`device`
 * int32 or int64, `ts` int64, `eff` and `clear` bool; `allowed` bool or None: where the
 * rule's schedule lets it open): the `for` timer (a run of `eff` rows that began before the
 * rows starts at the state's `since_ms`), the clear's own
 * timer when `clear_for_ms` >= 0 (`clear_since_ms`), the fault opening where the condition
 * has held `for_ms` and clearing where the clear holds (both at one row: it is open).
 * `opens` and `clears` are the rows where the fault opens and clears (int64), `started` when
 * each opening's run began, `flaps` whether it began within `gap_ms` of the device's last
 * clear (uint8); `ends` are the devices of the rows with where each ends: `since`,
 * `clear_since` (NEVER unless an open fault is clearing), `active` (uint8) and `last_clear`.
 * The state arrays are read, never written: the caller commits once the faults are made.
 * The same as `Episodes.of` and `Episodes.commit` compute with numpy, row for row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_rows.h"

/* A growing bytearray of int64 or uint8 items. */
typedef struct {
    PyObject *bytes;
    Py_ssize_t length, itemsize;
} Column;

static int push(Column *c, int64_t value) {
    Py_ssize_t size = PyByteArray_GET_SIZE(c->bytes);
    if ((c->length + 1) * c->itemsize > size) {
        if (PyByteArray_Resize(c->bytes, size ? size * 2 : 64 * c->itemsize) < 0) {
            return -1;
        }
    }
    char *at = PyByteArray_AS_STRING(c->bytes) + c->length * c->itemsize;
    if (c->itemsize == 8) {
        *(int64_t *)at = value;
    } else {
        *(uint8_t *)at = (uint8_t)value;
    }
    c->length++;
    return 0;
}

#define COLUMNS 9

/* An episode that began at `run` within `gap_ms` of the last clear is the same event again. */
static int flap(int64_t closed, int64_t run, long long gap_ms) {
    return closed != NEVER && run - closed < gap_ms;
}

static PyObject *episodes(PyObject *module, PyObject *args) {
    (void)module;
    long long for_ms, clear_for_ms, gap_ms;
    PyObject *o_dev, *o_ts, *o_eff, *o_clear, *o_allowed, *o_since, *o_csince, *o_active;
    PyObject *o_rep, *o_lc;
    if (!PyArg_ParseTuple(args, "LLLOOOOOOOOOO:episodes", &for_ms, &clear_for_ms, &gap_ms,
                          &o_dev, &o_ts, &o_eff, &o_clear, &o_allowed, &o_since, &o_csince,
                          &o_active, &o_rep, &o_lc)) {
        return NULL;
    }
    Views views = {.used = 0};
    PyObject *result = NULL;
    Column out[COLUMNS] = {{0}};
    const int64_t *since_ms = take(&views, o_since, 8, -1, 0, "since_ms");
    if (since_ms == NULL) {
        goto done;
    }
    Py_ssize_t devices = views.view[0].len / 8;
    const int64_t *clear_since_ms = take(&views, o_csince, 8, devices, 0, "clear_since_ms");
    const uint8_t *active0 =
        clear_since_ms ? take(&views, o_active, 1, devices, 0, "active") : NULL;
    const uint8_t *reported0 = active0 ? take(&views, o_rep, 1, devices, 0, "reported") : NULL;
    const int64_t *last_clear_ms = reported0 ? take(&views, o_lc, 8, devices, 0, "last_clear_ms")
                                             : NULL;
    Devices dev;
    Py_ssize_t rows;
    if (last_clear_ms == NULL || take_devices(&views, o_dev, &rows, devices, &dev) < 0) {
        goto done;
    }
    const int64_t *ts = take(&views, o_ts, 8, rows, 0, "ts");
    const uint8_t *eff = ts ? take(&views, o_eff, 1, rows, 0, "eff") : NULL;
    const uint8_t *clear = eff ? take(&views, o_clear, 1, rows, 0, "clear") : NULL;
    if (clear == NULL) {
        goto done;
    }
    const uint8_t *allowed = NULL;
    if (o_allowed != Py_None &&
        (allowed = take(&views, o_allowed, 1, rows, 0, "allowed")) == NULL) {
        goto done;
    }
    static const Py_ssize_t itemsize[COLUMNS] = {8, 8, 1, 8, 8, 8, 8, 1, 8};
    for (int c = 0; c < COLUMNS; c++) {
        out[c].itemsize = itemsize[c];
        out[c].bytes = PyByteArray_FromStringAndSize(NULL, 0);
        if (out[c].bytes == NULL) {
            goto done;
        }
    }
    Column *opens = &out[0], *started = &out[1], *flaps = &out[2], *clears = &out[3];
    Column *ends = &out[4], *end_since = &out[5], *end_clear = &out[6], *end_active = &out[7];
    Column *end_last_clear = &out[8];
    for (Py_ssize_t begin = 0; begin < rows;) {
        int64_t d = device_at(&dev, begin);
        int64_t run = since_ms[d], clear_run = clear_for_ms >= 0 ? clear_since_ms[d] : NEVER;
        int active = active0[d] != 0, reported = reported0[d] != 0;
        int64_t last_clear = last_clear_ms[d], closed = NEVER; /* the rows' last close */
        int holding = run != NEVER, clearing = clear_run != NEVER;
        Py_ssize_t i = begin;
        for (; i < rows && device_at(&dev, i) == d; i++) {
            if (eff[i]) {
                if (!holding) {
                    run = ts[i];
                    holding = 1;
                }
            } else {
                holding = 0;
            }
            int cleared = clear[i] != 0;
            if (clear_for_ms >= 0) {
                if (cleared) {
                    if (!clearing) {
                        clear_run = ts[i];
                        clearing = 1;
                    }
                    cleared = ts[i] - clear_run >= clear_for_ms;
                } else {
                    clearing = 0;
                }
            }
            int held = holding && ts[i] - run >= for_ms && (allowed == NULL || allowed[i]);
            int now = held ? 1 : cleared ? 0 : active;
            if (now && !reported) {
                if (push(opens, i) < 0 || push(started, run) < 0 ||
                    push(flaps, flap(closed != NEVER ? closed : last_clear, run, gap_ms)) < 0) {
                    goto done;
                }
            } else if (!now && reported && push(clears, i) < 0) {
                goto done;
            }
            if (!now && active) {
                closed = ts[i];
            }
            active = reported = now;
        }
        int64_t clear_since = active && clearing ? clear_run : NEVER;
        if (push(ends, d) < 0 || push(end_since, holding ? run : NEVER) < 0 ||
            push(end_clear, clear_since) < 0 || push(end_active, active) < 0 ||
            push(end_last_clear, closed > last_clear ? closed : last_clear) < 0) {
            goto done;
        }
        begin = i;
    }
    result = PyTuple_New(COLUMNS);
    if (result == NULL) {
        goto done;
    }
    for (int c = 0; c < COLUMNS; c++) {
        if (PyByteArray_Resize(out[c].bytes, out[c].length * out[c].itemsize) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, c, out[c].bytes);
        out[c].bytes = NULL;
    }
done:
    for (int c = 0; c < COLUMNS; c++) {
        Py_XDECREF(out[c].bytes);
    }
    release(&views);
    return result;
}

static PyMethodDef methods[] = {
    {"episodes", episodes, METH_VARARGS, "A plain rule's opens and clears, and its new state."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "alerts._episodes", "A plain rule's episodes, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__episodes(void) { return with_never(PyModule_Create(&module)); }
