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

/* A barrier of its own for a group of members (zero-initialise it). */
typedef struct {
    unsigned count, gen;
} frnn_bar;

/* What a task member knows: its index, the member count, the team, and the barrier frnn_sync
 * uses (NULL: the team's own, over every member of the task). */
typedef struct {
    int tid, nth;
    frnn_team *team;
    frnn_bar *bar;
} frnn_par;

typedef void (*frnn_task)(void *arg, const frnn_par *par);

/* Run fn on nth members (clamped to [1, FRNN_MAX_THREADS]) and return when all have finished.
 * nth == 1 runs fn on the caller without touching the team. */
void frnn_team_run(int nth, frnn_task fn, void *arg);

/* Barrier over the members of the running task (spins briefly, then sleeps). */
void frnn_sync(const frnn_par *par);

/* Members [first, first + n) of par's task as a group with barrier `bar`: the member's place in
 * it (tid - first of n). Groups run independent work side by side, each syncing only itself. */
static inline frnn_par frnn_group(const frnn_par *par, int first, int n, frnn_bar *bar)
{
    frnn_par g = {par->tid - first, n, par->team, n > 1 ? bar : NULL};
    return g;
}

/* Progress counters between groups (e.g. a layer's finished time steps, read by the layer above
 * it): publish stores `value` (release: the writes before it are visible to whoever sees it) and
 * wakes sleepers; wait returns once the counter has passed `value` (>= when up, <= when down),
 * spinning briefly, then sleeping. */
void frnn_publish(const frnn_par *par, int *counter, int value);
void frnn_wait_for(const frnn_par *par, const int *counter, int value, int up);

/* Steps shared by claims instead of a barrier (timeloop.h's per-step loop): every step is cut
 * into nth parts, part r being member r's units. A member claims its own part of a step, computes
 * it and reports it done; a member that waits for a step to be complete takes (claims and
 * computes) any part of it whose owner has not claimed it yet -- a member the OS has descheduled,
 * or one still waking from a sleep, then stalls no one. Each part is computed whole, by the same
 * code, whoever runs it: the same bits. Zero-initialise; one per task run (steps count from 0). */
#define FRNN_SHARE_MAX 8
typedef struct {
    int next[FRNN_SHARE_MAX][16];  /* next[r][0]: part r's steps claimed so far (a cache line each) */
    int done[16];                  /* done[0]: parts finished, over all steps */
} frnn_share;

/* Claim part r of step s: 1 when this member got it (exactly one member does). */
int frnn_share_claim(frnn_share *sh, int r, int s);
/* A claimed part is computed: publish it (release) and wake sleepers. */
void frnn_share_done(const frnn_par *par, frnn_share *sh);
/* Wait until every part of step s is done: returns -1 then -- or r >= 0, a part of step s that
 * this member has taken from its owner after the owner left it unclaimed for patience_ns (about
 * a part's time): compute it, frnn_share_done, and call again. Parts of step 0 are never taken
 * (their owners pack their weights before claiming them). */
int frnn_share_await(const frnn_par *par, frnn_share *sh, int s, long long patience_ns);
/* A monotonic clock in nanoseconds. */
long long frnn_clock_ns(void);
/* Parts taken from their owners since the process started (benchmarks, tests). */
unsigned long frnn_steal_count(void);
/* Test hook: with FASTRNN_TEST_STALL=m,us,every set, member m (m < 0: every member) sleeps `us`
 * microseconds before its part of each step t with (t + 1) % every == 0 -- a member descheduled by
 * the OS, on demand. With sh (shared steps) only while its part of step t is still unclaimed: once
 * others have taken it, the member is behind and catches up, as a rescheduled thread would. */
void frnn_test_stall(const frnn_par *par, int step, const frnn_share *sh);

/* Barriers opened (frnn_sync) since the process started: a count for benchmarks. */
unsigned long frnn_sync_count(void);

#ifdef FRNN_TEAM_STATS
/* Built with -DFRNN_TEAM_STATS only (benchmarks): for members 0..n-1, 5 numbers each into out --
 * nanoseconds in tasks (wall, own CPU), nanoseconds waiting inside them (wall, own CPU), waits. */
void frnn_team_stats(int n, double *out);
#endif

/* The default member count: FASTRNN_NUM_THREADS if set, else the CPUs this process may use. */
int frnn_default_threads(void);

/* Members [lo, hi) of n items in blocks of `unit` for member tid of nth (contiguous, balanced,
 * boundaries on multiples of unit; the last block may be short). */
void frnn_split(int n, int unit, int tid, int nth, int *lo, int *hi);

#endif
