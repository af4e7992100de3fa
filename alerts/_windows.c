/* Window functions walked device by device in C: alerts/rule_windows.py says why.
 *
 * Rows are a kind's readings in (device, time) order: `device` (int32 or int64), `ts` (int64)
 * and the window's `values` (float64), with `only` (bool, or None) choosing which rows with a
 * value are entries. The state arrays are a rule window's (`WindowState`), indexed by device:
 * rings of `width` slots, oldest first, ts NEVER (-2**61, as alerts.rule_language) and value
 * NaN in an empty slot.
 * Every function writes the value at each row into `result` and returns the new state of the
 * devices it changed as bytearrays, which the caller views as arrays; nothing is written into
 * the state, so a rule that fails later leaves it as it was.
 *
 *   last_n(function, device, ts, values, only, ring_ts, ring_val, current, result)
 *       -> (devices, ring_ts, ring_val, current)     devices with a new entry
 *   time_window(function, window_ms, min_readings, device, ts, values, only, ring_ts,
 *               ring_val, result)
 *       -> (devices, ring_ts, ring_val)              devices with a new entry
 *   stuck(window_ms, min_readings, device, ts, values, run_value, run_start, run_count, result)
 *       -> (devices, run_value, run_start, run_count)  every device of the rows
 *
 * `function`: 0 count, 1 changes, 2 mean, 3 median, 4 slope (time windows; NaN below
 * `min_readings` entries). A mean is summed oldest first, one value after another, as the
 * numpy path sums it, so both give the same bits whatever the batches; a slope comes from
 * prefix sums, as there, measured from an entry of the window (closer to a two-pass fit).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_rows.h"

enum { COUNT = 0, CHANGES = 1, MEAN = 2, MEDIAN = 3, SLOPE = 4 };

/* A window's rings: ts (int64) and values (float64), both (devices, width), width >= 1; they
 * are the call's two newest buffers. */
static const int64_t *take_rings(Views *views, PyObject *o_ts, PyObject *o_val,
                                 Py_ssize_t *devices, Py_ssize_t *width) {
    const int64_t *ring_ts = take(views, o_ts, 8, -1, 0, "ring_ts");
    if (ring_ts == NULL || take(views, o_val, 8, -1, 0, "ring_val") == NULL) {
        return NULL;
    }
    Py_buffer *t = &views->view[views->used - 2], *v = &views->view[views->used - 1];
    if (t->ndim != 2 || v->ndim != 2 || t->shape[0] != v->shape[0] ||
        t->shape[1] != v->shape[1] || t->shape[1] < 1) {
        PyErr_SetString(PyExc_ValueError, "rings must be (devices, width) with width >= 1");
        return NULL;
    }
    *devices = t->shape[0];
    *width = t->shape[1];
    return ring_ts;
}

static int take_only(Views *views, PyObject *obj, Py_ssize_t rows, const unsigned char **out) {
    *out = NULL;
    if (obj == Py_None) {
        return 0;
    }
    *out = take(views, obj, 1, rows, 0, "only");
    return *out == NULL ? -1 : 0;
}

/* count, changes or mean over `size` slots oldest first (NaN = an empty slot). */
static double reduce(int function, const double *v, Py_ssize_t size) {
    Py_ssize_t valid = 0;
    double total = 0.0;
    if (function == COUNT) {
        for (Py_ssize_t i = 0; i < size; i++) {
            total += !isnan(v[i]) && v[i] != 0.0;
        }
        return total;
    }
    if (function == CHANGES) {
        for (Py_ssize_t i = 1; i < size; i++) {
            total += !isnan(v[i]) && !isnan(v[i - 1]) && v[i] != v[i - 1];
        }
        return total;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        if (!isnan(v[i])) {
            total += v[i];
            valid++;
        }
    }
    return valid ? total / (double)valid : NAN;
}

/* A median's window, kept sorted as entries come and go (a sort per row would cost more than
 * the rest of the walk); NaN never enters it. */
static Py_ssize_t lower_bound(const double *v, Py_ssize_t n, double x) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void sorted_insert(double *v, Py_ssize_t *n, double x) {
    if (isnan(x)) {
        return;
    }
    Py_ssize_t at = lower_bound(v, *n, x);
    memmove(v + at + 1, v + at, (size_t)(*n - at) * sizeof(double));
    v[at] = x;
    (*n)++;
}

static void sorted_remove(double *v, Py_ssize_t *n, double x) {
    if (isnan(x)) {
        return;
    }
    Py_ssize_t at = lower_bound(v, *n, x);
    if (at < *n && v[at] == x) {
        memmove(v + at, v + at + 1, (size_t)(*n - at - 1) * sizeof(double));
        (*n)--;
    }
}

static double sorted_median(const double *v, Py_ssize_t n) {
    return n ? (v[(n - 1) / 2] + v[n / 2]) / 2 : NAN;
}

static int parse_function(int function, int last) {
    if (function < COUNT || function > last) {
        PyErr_Format(PyExc_ValueError, "function must be 0..%d", last);
        return -1;
    }
    return 0;
}

/* slope(): prefix sums of x (seconds), y, x*x and x*y from an `origin` entry inside the
 * window, so the sums stay small and the centred sums keep their digits. */
typedef struct {
    double *x, *y, *xx, *xy;
    Py_ssize_t origin, summed; /* origin < 0: not set; summed: prefix sums made so far */
} Sums;

static void extend_sums(Sums *s, const int64_t *buf_ts, const double *buf_val, Py_ssize_t end) {
    int64_t t0 = buf_ts[s->origin];
    double v0 = buf_val[s->origin];
    for (Py_ssize_t j = s->summed; s->origin + j < end; j++) {
        double x = (double)(buf_ts[s->origin + j] - t0) / 1000.0;
        double y = buf_val[s->origin + j] - v0;
        s->x[j + 1] = s->x[j] + x;
        s->y[j + 1] = s->y[j] + y;
        s->xx[j + 1] = s->xx[j] + x * x;
        s->xy[j + 1] = s->xy[j] + x * y;
        s->summed = j + 1;
    }
}

/* The least-squares slope over the entries [lo, end) fitted in two passes (means first):
 * what the prefix sums give when they would lose digits. */
static double two_pass_slope(const int64_t *buf_ts, const double *buf_val, Py_ssize_t lo,
                             Py_ssize_t end) {
    double mean_x = 0.0, mean_y = 0.0, xx = 0.0, xy = 0.0;
    Py_ssize_t count = end - lo;
    for (Py_ssize_t j = lo; j < end; j++) {
        mean_x += (double)(buf_ts[j] - buf_ts[lo]) / 1000.0;
        mean_y += buf_val[j];
    }
    mean_x /= (double)count;
    mean_y /= (double)count;
    for (Py_ssize_t j = lo; j < end; j++) {
        double dx = (double)(buf_ts[j] - buf_ts[lo]) / 1000.0 - mean_x;
        xx += dx * dx;
        xy += dx * (buf_val[j] - mean_y);
    }
    return xx > 0 ? xy / xx : NAN;
}

/* The least-squares slope per second over the entries [lo, end): NaN below `min_readings`
 * entries or with every entry at one time. From the prefix sums; where their difference
 * leaves the centred sum of squares fewer than ten good digits (entries a millisecond
 * apart), in two passes instead, as alerts.rule_reducers.window_slopes does. */
static double slope(const Sums *s, const int64_t *buf_ts, const double *buf_val, Py_ssize_t lo,
                    Py_ssize_t end, long long min_readings) {
    Py_ssize_t count = end - lo;
    if (count < min_readings || count < 1 || buf_ts[end - 1] <= buf_ts[lo]) {
        return NAN;
    }
    Py_ssize_t a = lo - s->origin, b = end - s->origin;
    double sx = s->x[b] - s->x[a], sy = s->y[b] - s->y[a];
    double sxx = s->xx[b] - s->xx[a], sxy = s->xy[b] - s->xy[a];
    double centred_xx = sxx - sx * sx / (double)count;
    double centred_xy = sxy - sx * sy / (double)count;
    if (!(centred_xx > 1e-6 * s->xx[b])) {
        return two_pass_slope(buf_ts, buf_val, lo, end);
    }
    return centred_xy / centred_xx;
}

/* Bytearrays for the new state of `k` devices, rings `width` wide (width 0: no rings). */
typedef struct {
    PyObject *devices, *ring_ts, *ring_val, *extra;
} Out;

static int new_out(Out *out, Py_ssize_t k, Py_ssize_t width, int extra) {
    out->devices = PyByteArray_FromStringAndSize(NULL, k * 8);
    out->ring_ts = PyByteArray_FromStringAndSize(NULL, k * width * 8);
    out->ring_val = PyByteArray_FromStringAndSize(NULL, k * width * 8);
    out->extra = extra ? PyByteArray_FromStringAndSize(NULL, k * 8) : NULL;
    if (!out->devices || !out->ring_ts || !out->ring_val || (extra && !out->extra)) {
        return -1; /* close_walk releases what was made */
    }
    return 0;
}

/* How many device groups of the rows have an entry. */
static Py_ssize_t groups_with_entries(const Devices *dev, Py_ssize_t rows, const double *values,
                                      const unsigned char *only) {
    Py_ssize_t k = 0;
    int64_t counted = -1;
    for (Py_ssize_t i = 0; i < rows; i++) {
        int64_t d = device_at(dev, i);
        if (d != counted && !isnan(values[i]) && (only == NULL || only[i])) {
            counted = d;
            k++;
        }
    }
    return k;
}

/* Whether rows [start, stop) hold an entry. */
static int has_entry(const double *values, const unsigned char *only, Py_ssize_t start,
                     Py_ssize_t stop) {
    for (Py_ssize_t i = start; i < stop; i++) {
        if (!isnan(values[i]) && (only == NULL || only[i])) {
            return 1;
        }
    }
    return 0;
}

/* What last_n and time_window share: the rows and their window values, the window's rings,
 * the result to write, the new rings of the devices with an entry (with each one's value over
 * its ring for a last-n window: `extra`), and the scratch space of one device's walk. */
typedef struct {
    Views views;
    Devices dev;
    Py_ssize_t rows, devices, width, written;
    const int64_t *ring_ts, *ts;
    const double *ring_val, *values;
    const unsigned char *only;
    double *res;
    Out out;
    int64_t *out_dev, *out_ts;
    double *out_val, *out_extra;
    int64_t *buf_ts; /* a device's ring then its entries */
    double *buf_val, *sorted;
} Walk;

/* Take a call's arrays (`o_cur`: a last-n window's current values, or NULL) and make its
 * output and scratch space; -1 with an exception set (then `close_walk` all the same). */
static int open_walk(Walk *w, PyObject *o_dev, PyObject *o_ts, PyObject *o_val, PyObject *o_only,
                     PyObject *o_rts, PyObject *o_rval, PyObject *o_cur, PyObject *o_res,
                     const double **current) {
    w->ring_ts = take_rings(&w->views, o_rts, o_rval, &w->devices, &w->width);
    if (w->ring_ts == NULL) {
        return -1;
    }
    w->ring_val = w->views.view[w->views.used - 1].buf;
    if (o_cur != NULL &&
        (*current = take(&w->views, o_cur, 8, w->devices, 0, "current")) == NULL) {
        return -1;
    }
    if (take_devices(&w->views, o_dev, &w->rows, w->devices, &w->dev) < 0 ||
        (w->ts = take(&w->views, o_ts, 8, w->rows, 0, "ts")) == NULL ||
        (w->values = take(&w->views, o_val, 8, w->rows, 0, "values")) == NULL ||
        (w->res = take(&w->views, o_res, 8, w->rows, 1, "result")) == NULL ||
        take_only(&w->views, o_only, w->rows, &w->only) < 0) {
        return -1;
    }
    Py_ssize_t k = groups_with_entries(&w->dev, w->rows, w->values, w->only);
    if (new_out(&w->out, k, w->width, o_cur != NULL) < 0) {
        return -1;
    }
    w->out_dev = (int64_t *)PyByteArray_AS_STRING(w->out.devices);
    w->out_ts = (int64_t *)PyByteArray_AS_STRING(w->out.ring_ts);
    w->out_val = (double *)PyByteArray_AS_STRING(w->out.ring_val);
    w->out_extra = o_cur != NULL ? (double *)PyByteArray_AS_STRING(w->out.extra) : NULL;
    size_t slots = (size_t)(w->width + w->rows + 1);
    w->buf_val = PyMem_Malloc(slots * sizeof(double));
    w->buf_ts = PyMem_Malloc(slots * sizeof(int64_t));
    w->sorted = PyMem_Malloc((size_t)(w->width + 1) * sizeof(double));
    if (!w->buf_val || !w->buf_ts || !w->sorted) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The rows of the device group starting at `start`: where the next one starts. */
static Py_ssize_t group_end(const Walk *w, Py_ssize_t start) {
    int64_t d = device_at(&w->dev, start);
    Py_ssize_t stop = start;
    while (stop < w->rows && device_at(&w->dev, stop) == d) {
        stop++;
    }
    return stop;
}

/* The call's result, its new state as a tuple of 3 (4 with `extra`), or NULL on an error. */
static PyObject *close_walk(Walk *w, int failed) {
    PyObject *result = NULL;
    if (!failed) {
        result = w->out.extra != NULL
                     ? PyTuple_Pack(4, w->out.devices, w->out.ring_ts, w->out.ring_val,
                                    w->out.extra)
                     : PyTuple_Pack(3, w->out.devices, w->out.ring_ts, w->out.ring_val);
    }
    Py_XDECREF(w->out.devices);
    Py_XDECREF(w->out.ring_ts);
    Py_XDECREF(w->out.ring_val);
    Py_XDECREF(w->out.extra);
    PyMem_Free(w->buf_val);
    PyMem_Free(w->buf_ts);
    PyMem_Free(w->sorted);
    release(&w->views);
    return result;
}

static PyObject *last_n(PyObject *module, PyObject *args) {
    (void)module;
    int function;
    PyObject *o_dev, *o_ts, *o_val, *o_only, *o_rts, *o_rval, *o_cur, *o_res;
    if (!PyArg_ParseTuple(args, "iOOOOOOOO:last_n", &function, &o_dev, &o_ts, &o_val, &o_only,
                          &o_rts, &o_rval, &o_cur, &o_res) ||
        parse_function(function, MEDIAN) < 0) {
        return NULL;
    }
    Walk w = {.views = {.used = 0}};
    const double *current = NULL;
    if (open_walk(&w, o_dev, o_ts, o_val, o_only, o_rts, o_rval, o_cur, o_res, &current) < 0) {
        return close_walk(&w, 1);
    }
    const Py_ssize_t width = w.width;
    const int64_t *ts = w.ts;
    const double *values = w.values;
    const unsigned char *only = w.only;
    double *res = w.res, *buf_val = w.buf_val, *sorted = w.sorted;
    int64_t *buf_ts = w.buf_ts;
    for (Py_ssize_t start = 0; start < w.rows;) {
        int64_t d = device_at(&w.dev, start);
        Py_ssize_t stop = group_end(&w, start);
        if (!has_entry(values, only, start, stop)) { /* the window as the state holds it */
            for (Py_ssize_t i = start; i < stop; i++) {
                res[i] = current[d];
            }
            start = stop;
            continue;
        }
        /* the device's ring, then its entries one after another */
        memcpy(buf_val, w.ring_val + d * width, (size_t)width * sizeof(double));
        memcpy(buf_ts, w.ring_ts + d * width, (size_t)width * sizeof(int64_t));
        Py_ssize_t end = width, in_order = -1;
        double value = current[d];
        for (Py_ssize_t i = start; i < stop; i++) {
            if (!isnan(values[i]) && (only == NULL || only[i])) {
                buf_val[end] = values[i];
                buf_ts[end] = ts[i];
                end++;
                if (function != MEDIAN) {
                    value = reduce(function, buf_val + end - width, width);
                    res[i] = value;
                    continue;
                }
                if (in_order < 0) { /* the ring, sorted once the device has an entry */
                    in_order = 0;
                    for (Py_ssize_t j = 0; j < width; j++) {
                        sorted_insert(sorted, &in_order, buf_val[j]);
                    }
                }
                sorted_remove(sorted, &in_order, buf_val[end - 1 - width]);
                sorted_insert(sorted, &in_order, buf_val[end - 1]);
                value = sorted_median(sorted, in_order);
            }
            res[i] = value;
        }
        memcpy(w.out_val + w.written * width, buf_val + end - width,
               (size_t)width * sizeof(double));
        memcpy(w.out_ts + w.written * width, buf_ts + end - width,
               (size_t)width * sizeof(int64_t));
        w.out_extra[w.written] = value;
        w.out_dev[w.written++] = d;
        start = stop;
    }
    return close_walk(&w, 0);
}

static PyObject *time_window(PyObject *module, PyObject *args) {
    (void)module;
    int function;
    long long window_ms, min_readings;
    PyObject *o_dev, *o_ts, *o_val, *o_only, *o_rts, *o_rval, *o_res;
    if (!PyArg_ParseTuple(args, "iLLOOOOOOO:time_window", &function, &window_ms, &min_readings,
                          &o_dev, &o_ts, &o_val, &o_only, &o_rts, &o_rval, &o_res) ||
        parse_function(function, SLOPE) < 0) {
        return NULL;
    }
    Walk w = {.views = {.used = 0}};
    if (open_walk(&w, o_dev, o_ts, o_val, o_only, o_rts, o_rval, NULL, o_res, NULL) < 0) {
        return close_walk(&w, 1);
    }
    const Py_ssize_t width = w.width;
    const int64_t *ts = w.ts;
    const double *values = w.values;
    const unsigned char *only = w.only;
    double *res = w.res, *buf_val = w.buf_val, *sorted = w.sorted;
    int64_t *buf_ts = w.buf_ts;
    double *prefix = PyMem_Malloc((size_t)(width + w.rows + 1) * 4 * sizeof(double));
    if (prefix == NULL) {
        PyErr_NoMemory();
        return close_walk(&w, 1);
    }
    Py_ssize_t stride = width + w.rows + 1;
    Sums sums = {prefix, prefix + stride, prefix + 2 * stride, prefix + 3 * stride, -1, 0};
    for (Py_ssize_t start = 0; start < w.rows;) {
        int64_t d = device_at(&w.dev, start);
        Py_ssize_t stop = group_end(&w, start);
        /* the ring's entries young enough for the first row's window (the others are in no
         * row's window), then the new entries: a row's window is the entries up to its own,
         * newer than its time minus the window, at most `width` of the ring and entries */
        const int64_t *old_ts = w.ring_ts + d * width;
        const double *old_val = w.ring_val + d * width;
        int64_t first_cutoff = ts[start] < NEVER + window_ms ? NEVER : ts[start] - window_ms;
        Py_ssize_t young = width;
        while (young > 0 && old_ts[young - 1] > first_cutoff) {
            young--;
        }
        if (young == width && !has_entry(values, only, start, stop)) { /* an empty window */
            for (Py_ssize_t i = start; i < stop; i++) {
                res[i] = function == COUNT || function == CHANGES ? 0.0 : NAN;
            }
            start = stop;
            continue;
        }
        Py_ssize_t kept = width - young;
        memcpy(buf_val, old_val + young, (size_t)kept * sizeof(double));
        memcpy(buf_ts, old_ts + young, (size_t)kept * sizeof(int64_t));
        Py_ssize_t lo = 0, end = kept, in_order = 0; /* positions less `young` on both */
        sums.origin = -1;
        if (function == MEDIAN) {
            for (Py_ssize_t j = 0; j < kept; j++) {
                sorted_insert(sorted, &in_order, buf_val[j]);
            }
        }
        for (Py_ssize_t i = start; i < stop; i++) {
            if (!isnan(values[i]) && (only == NULL || only[i])) {
                buf_val[end] = values[i];
                buf_ts[end] = ts[i];
                end++;
                if (function == MEDIAN) {
                    sorted_insert(sorted, &in_order, values[i]);
                }
            }
            /* entries newer than ts - window (kept from overflowing; empty slots are NEVER),
             * at most `width` of them */
            int64_t cutoff = ts[i] < NEVER + window_ms ? NEVER : ts[i] - window_ms;
            while (lo < end && (lo < end - width || buf_ts[lo] <= cutoff)) {
                if (function == MEDIAN) {
                    sorted_remove(sorted, &in_order, buf_val[lo]);
                }
                lo++;
            }
            if (function == SLOPE) {
                /* sums from the window's first entry, made again once it is a window behind
                 * (each entry summed at most twice a window: x stays within two windows) */
                if (lo < end && (sums.origin < 0 || buf_ts[lo] - buf_ts[sums.origin] > window_ms)) {
                    sums.origin = lo;
                    sums.summed = 0;
                    sums.x[0] = sums.y[0] = sums.xx[0] = sums.xy[0] = 0.0;
                }
                if (sums.origin >= 0) {
                    extend_sums(&sums, buf_ts, buf_val, end);
                }
                res[i] = lo < end ? slope(&sums, buf_ts, buf_val, lo, end, min_readings) : NAN;
            } else {
                res[i] = function == MEDIAN ? sorted_median(sorted, in_order)
                                            : reduce(function, buf_val + lo, end - lo);
            }
        }
        Py_ssize_t fresh = end - kept;
        if (fresh > 0) { /* the new ring: the old one shifted by the new entries, them last */
            int64_t *new_ts = w.out_ts + w.written * width;
            double *new_val = w.out_val + w.written * width;
            for (Py_ssize_t j = 0; j < width; j++) {
                Py_ssize_t at = fresh + j;
                int old = at < width;
                new_ts[j] = old ? old_ts[at] : buf_ts[kept + at - width];
                new_val[j] = old ? old_val[at] : buf_val[kept + at - width];
            }
            w.out_dev[w.written++] = d;
        }
        start = stop;
    }
    PyMem_Free(prefix);
    return close_walk(&w, 0);
}

static PyObject *stuck(PyObject *module, PyObject *args) {
    (void)module;
    long long window_ms, min_readings;
    PyObject *o_dev, *o_ts, *o_val, *o_rv, *o_rs, *o_rc, *o_res;
    if (!PyArg_ParseTuple(args, "LLOOOOOOO:stuck", &window_ms, &min_readings, &o_dev, &o_ts,
                          &o_val, &o_rv, &o_rs, &o_rc, &o_res)) {
        return NULL;
    }
    Views views = {.used = 0};
    Devices dev;
    Py_ssize_t rows;
    PyObject *result = NULL;
    const double *run_value = take(&views, o_rv, 8, -1, 0, "run_value");
    if (run_value == NULL) {
        goto done;
    }
    Py_ssize_t devices = views.view[0].len / 8;
    const int64_t *run_start = take(&views, o_rs, 8, devices, 0, "run_start");
    const int64_t *run_count = run_start ? take(&views, o_rc, 8, devices, 0, "run_count") : NULL;
    if (run_count == NULL || take_devices(&views, o_dev, &rows, devices, &dev) < 0) {
        goto done;
    }
    const int64_t *ts = take(&views, o_ts, 8, rows, 0, "ts");
    const double *values = ts ? take(&views, o_val, 8, rows, 0, "values") : NULL;
    double *res = values ? take(&views, o_res, 8, rows, 1, "result") : NULL;
    if (res == NULL) {
        goto done;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < rows; i++) {
        k += i == 0 || device_at(&dev, i) != device_at(&dev, i - 1);
    }
    PyObject *o_devices = PyByteArray_FromStringAndSize(NULL, k * 8);
    PyObject *o_value = PyByteArray_FromStringAndSize(NULL, k * 8);
    PyObject *o_start = PyByteArray_FromStringAndSize(NULL, k * 8);
    PyObject *o_count = PyByteArray_FromStringAndSize(NULL, k * 8);
    if (!o_devices || !o_value || !o_start || !o_count) {
        Py_XDECREF(o_devices);
        Py_XDECREF(o_value);
        Py_XDECREF(o_start);
        Py_XDECREF(o_count);
        goto done;
    }
    int64_t *out_dev = (int64_t *)PyByteArray_AS_STRING(o_devices);
    double *out_value = (double *)PyByteArray_AS_STRING(o_value);
    int64_t *out_start = (int64_t *)PyByteArray_AS_STRING(o_start);
    int64_t *out_count = (int64_t *)PyByteArray_AS_STRING(o_count);
    Py_ssize_t written = 0;
    for (Py_ssize_t begin = 0; begin < rows;) {
        int64_t d = device_at(&dev, begin);
        double previous = run_value[d];
        int64_t since = run_start[d], count = run_count[d];
        Py_ssize_t i = begin;
        for (; i < rows && device_at(&dev, i) == d; i++) {
            double v = values[i];
            if (v == previous) { /* NaN never equals: a missing value breaks the run */
                count++;
            } else {
                since = ts[i];
                count = 1;
            }
            previous = v;
            res[i] = !isnan(v) && since != NEVER && ts[i] - since >= window_ms &&
                     count >= min_readings;
        }
        out_dev[written] = d;
        out_value[written] = previous;
        out_start[written] = since;
        out_count[written] = count;
        written++;
        begin = i;
    }
    result = Py_BuildValue("(NNNN)", o_devices, o_value, o_start, o_count);
done:
    release(&views);
    return result;
}

static PyMethodDef methods[] = {
    {"last_n", last_n, METH_VARARGS, "A last-n window at every row, and the new rings."},
    {"time_window", time_window, METH_VARARGS, "A time window at every row, and the new rings."},
    {"stuck", stuck, METH_VARARGS, "stuck() at every row, and the new flat runs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "alerts._windows", "Window functions device by device, in C.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__windows(void) { return with_never(PyModule_Create(&module)); }
