/* team.h - fastrnn's own thread team: persistent pthreads, a spin-then-sleep barrier.
 *
 * The team is created on first use and lives until the process ends. A kernel call hands it one
 * task, fn(arg, par), which every member runs (the calling thread is member 0); inside the task,
 * frnn_sync(par) is a barrier over the members. One call owns the team at a time: a second
 * caller (another Python thread) waits until the first call's task has returned, so two
 * concurrent kernel calls are serialised, never interleaved.
 *
 * No OpenMP: nothing here clashes with the OpenMP runtimes of torch or NumPy's BLAS.
 */
#ifndef FASTRNN_TEAM_H
#define FASTRNN_TEAM_H

#define FRNN_MAX_THREADS 256

typedef struct frnn_team frnn_team;

/* What a task member knows: its index, the member count, and the team (for frnn_sync). */
typedef struct {
    int tid, nth;
    frnn_team *team;
} frnn_par;

typedef void (*frnn_task)(void *arg, const frnn_par *par);

/* Run fn on nth members (clamped to [1, FRNN_MAX_THREADS]) and return when all have finished.
 * nth == 1 runs fn on the caller without touching the team. */
void frnn_team_run(int nth, frnn_task fn, void *arg);

/* Barrier over the members of the running task (spins briefly, then sleeps). */
void frnn_sync(const frnn_par *par);

/* The default member count: FASTRNN_NUM_THREADS if set, else the CPUs this process may use. */
int frnn_default_threads(void);

/* Members [lo, hi) of n items in blocks of `unit` for member tid of nth (contiguous, balanced,
 * boundaries on multiples of unit; the last block may be short). */
void frnn_split(int n, int unit, int tid, int nth, int *lo, int *hi);

#endif
