/* team.c - the persistent thread team (see team.h).
 *
 * Waiting is spin-then-sleep: a member first spins on an atomic (cheap when the others arrive
 * within microseconds, as they do between the time steps of one kernel call), then sleeps on a
 * condition variable so that an idle team costs no CPU. An idle worker spins for the next job
 * for FASTRNN_SPIN_US (default 200 us; 0: sleep at once) and then sleeps, unlike a BLAS or
 * OpenMP thread pool that keeps spinning for milliseconds and steals the core from the caller.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "team.h"
#include "glibc_compat.h"          /* pthread symbols bound to the old glibc version */

#ifndef FRNN_SPINS
#define FRNN_SPINS 1000            /* pause iterations before sleeping (~10-50 us): long enough for
                                      a member that is running, short enough not to burn a core
                                      waiting for one the OS has descheduled */
#endif

struct frnn_team {
    pthread_mutex_t own;           /* held by the caller for a whole frnn_team_run */
    pthread_mutex_t lock;          /* guards the sleeps below */
    pthread_cond_t work_cv, done_cv, bar_cv;
    int started;                   /* workers created (members 1..started) */
    frnn_task fn;
    void *arg;
    int nth;
    unsigned job;                  /* job generation: bumped to start a task */
    unsigned done;                 /* workers (all of them, needed or not) done with the job */
    unsigned born[FRNN_MAX_THREADS]; /* job generation when each worker was created */
    frnn_bar bar;                  /* the barrier over all members of the task */
    int sleepers;                  /* members asleep on bar_cv (barriers, frnn_wait_for): an
                                      opened barrier or a publish wakes only when there are any */
    int work_sleepers, done_sleepers;  /* the same for work_cv and done_cv */
};

/* Barriers opened since the process started (bench/decomp.py counts them per call). */
static unsigned long SYNCS;
unsigned long frnn_sync_count(void) { return __atomic_load_n(&SYNCS, __ATOMIC_RELAXED); }

/* Per-member accounting for benchmarks (bench/lm_step.c builds with -DFRNN_TEAM_STATS; release
 * builds have none of it): nanoseconds each member spent in tasks and waiting in them (barriers,
 * progress counters), on the wall clock and on its own CPU clock. A member's CPU time in a task
 * minus its CPU time waiting is its work, which a loaded machine does not inflate much; the
 * difference between the members' work is what the faster one waits for on a quiet machine. */
#ifdef FRNN_TEAM_STATS
enum { ST_TASK_WALL, ST_TASK_CPU, ST_WAIT_WALL, ST_WAIT_CPU, ST_WAITS, ST_N };
static double STATS[FRNN_MAX_THREADS][ST_N];
static __thread int STAT_ME, STAT_IN;      /* this member's index; inside a task */
static double stat_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return 1e9 * ts.tv_sec + ts.tv_nsec;
}
#define STAT_BEGIN(kind) const double st_w0 = stat_clock(CLOCK_MONOTONIC), st_c0 = stat_clock(CLOCK_THREAD_CPUTIME_ID)
#define STAT_END(kind) (STATS[STAT_ME][kind] += stat_clock(CLOCK_MONOTONIC) - st_w0, \
                        STATS[STAT_ME][kind + 1] += stat_clock(CLOCK_THREAD_CPUTIME_ID) - st_c0, \
                        STATS[STAT_ME][ST_WAITS] += (kind) == ST_WAIT_WALL)
#define STAT_SET_ME(tid) (STAT_ME = (tid), STAT_IN = 1)
#define STAT_LEAVE() (STAT_IN = 0)

void frnn_team_stats(int n, double *out)
{
    for (int i = 0; i < n && i < FRNN_MAX_THREADS; i++)
        for (int k = 0; k < ST_N; k++) out[i * ST_N + k] = ((volatile double *)STATS[i])[k];   /* a benchmark's snapshot */
}
#else
#define STAT_BEGIN(kind) ((void)0)
#define STAT_END(kind) ((void)0)
#define STAT_SET_ME(tid) ((void)0)
#define STAT_LEAVE() ((void)0)
#endif

static frnn_team TEAM = {.own = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
                         .work_cv = PTHREAD_COND_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER,
                         .bar_cv = PTHREAD_COND_INITIALIZER};
static pthread_once_t ATFORK_ONCE = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
/* a change a sleeper may wait for: sequentially consistent, as the sleeper's count (see wake) */
#define ADD_SC(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

#ifndef FRNN_IDLE_SPIN_US
#define FRNN_IDLE_SPIN_US 200      /* how long an idle worker keeps spinning for the next job */
#endif
static long IDLE_SPIN_NS = -1;     /* FASTRNN_SPIN_US or the default, read once */

static long idle_spin_ns(void)
{
    long ns = LOAD(&IDLE_SPIN_NS);
    if (ns < 0) {
        const char *env = getenv("FASTRNN_SPIN_US");
        char *end;
        long us = env && *env ? strtol(env, &end, 10) : FRNN_IDLE_SPIN_US;
        if (env && *env && (*end != '\0' || us < 0)) us = FRNN_IDLE_SPIN_US;
        ns = (us > 1000000 ? 1000000 : us) * 1000;
        STORE(&IDLE_SPIN_NS, ns);
    }
    return ns;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spin until *p != old -- FRNN_SPINS pauses, then on for `spin_ns` more nanoseconds -- then sleep
 * on cv until it is, counted in *sleepers while asleep. */
static void wait_change_for(frnn_team *tm, const unsigned *p, unsigned old, pthread_cond_t *cv,
                            int *sleepers, long spin_ns)
{
    for (int i = 0; i < FRNN_SPINS; i++) {
        if (LOAD(p) != old) return;
        cpu_relax();
    }
    if (spin_ns > 0) {
        const long long end = now_ns() + spin_ns;
        do {
            for (int i = 0; i < 64; i++) {
                if (LOAD(p) != old) return;
                cpu_relax();
            }
        } while (now_ns() < end);
    }
    pthread_mutex_lock(&tm->lock);
    __atomic_add_fetch(sleepers, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(p, __ATOMIC_SEQ_CST) == old) pthread_cond_wait(cv, &tm->lock);
    __atomic_sub_fetch(sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&tm->lock);
}

static void wait_change(frnn_team *tm, const unsigned *p, unsigned old, pthread_cond_t *cv, int *sleepers)
{
    wait_change_for(tm, p, old, cv, sleepers, 0);
}

/* Wake whoever sleeps on cv (after the atomic it waits on has changed, by a seq_cst store or
 * ADD_SC). Nobody asleep (the common case between time steps): no lock, no syscall. The change
 * and the sleeper's count are both sequentially consistent, so either this sees the count of a
 * sleeper -- and broadcasts under the lock that sleeper holds until it waits -- or the sleeper
 * sees the change and does not sleep (as frnn_publish / frnn_wait_for). */
static void wake(frnn_team *tm, pthread_cond_t *cv, const int *sleepers)
{
    if (__atomic_load_n(sleepers, __ATOMIC_SEQ_CST) == 0) return;
    pthread_mutex_lock(&tm->lock);
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(&tm->lock);
}

void frnn_sync(const frnn_par *par)
{
    frnn_team *tm = par->team;
    if (par->nth <= 1) return;
    frnn_bar *bar = par->bar ? par->bar : &tm->bar;    /* groups' barriers share the team's cv */
    unsigned gen = LOAD(&bar->gen);
    if (ADD(&bar->count, 1) == (unsigned)par->nth) {   /* the last to arrive opens the barrier */
        __atomic_add_fetch(&SYNCS, 1, __ATOMIC_RELAXED);
        STORE(&bar->count, 0);
        ADD_SC(&bar->gen, 1);
        wake(tm, &tm->bar_cv, &tm->sleepers);
        return;
    }
    STAT_BEGIN(ST_WAIT_WALL);
    wait_change(tm, &bar->gen, gen, &tm->bar_cv, &tm->sleepers);
    STAT_END(ST_WAIT_WALL);
}

/* A wavefront or pipeline publishes every chunk, as often as every step: no lock unless a
 * waiter sleeps. Both sides are sequentially consistent (store, then load the other's
 * variable), so either the publisher sees the sleeper and wakes it under the lock the sleeper
 * holds until it waits, or the sleeper sees the new value and does not sleep. */
void frnn_publish(const frnn_par *par, int *counter, int value)
{
    __atomic_store_n(counter, value, __ATOMIC_SEQ_CST);
    wake(par->team, &par->team->bar_cv, &par->team->sleepers);
}

static int passed(const int *counter, int value, int up)
{
    const int v = __atomic_load_n(counter, __ATOMIC_SEQ_CST);
    return up ? v >= value : v <= value;
}

void frnn_wait_for(const frnn_par *par, const int *counter, int value, int up)
{
    frnn_team *tm = par->team;
    if (passed(counter, value, up)) return;
    STAT_BEGIN(ST_WAIT_WALL);
    for (int i = 0; i < 20 * FRNN_SPINS; i++) {     /* a chunk of steps takes longer than a step */
        if (passed(counter, value, up)) {
            STAT_END(ST_WAIT_WALL);
            return;
        }
        cpu_relax();
    }
    pthread_mutex_lock(&tm->lock);
    __atomic_add_fetch(&tm->sleepers, 1, __ATOMIC_SEQ_CST);
    while (!passed(counter, value, up))      /* a seq_cst load (see frnn_publish) */
        pthread_cond_wait(&tm->bar_cv, &tm->lock);
    __atomic_sub_fetch(&tm->sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&tm->lock);
    STAT_END(ST_WAIT_WALL);
}

/* Shared steps (team.h). A step's parts are claimed by a compare-and-swap on the part's step
 * count, so a part is computed exactly once; done counts parts over all steps (the parts of step
 * s + 1 are claimed only once step s is complete, so step s is complete when done reaches
 * nth * (s + 1)). The member completing a step counts it as a barrier (frnn_sync_count). */
static unsigned long STEALS;
unsigned long frnn_steal_count(void) { return __atomic_load_n(&STEALS, __ATOMIC_RELAXED); }

int frnn_share_claim(frnn_share *sh, int r, int s)
{
    int expect = s;
    return __atomic_compare_exchange_n(&sh->next[r][0], &expect, s + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

void frnn_share_done(const frnn_par *par, frnn_share *sh)
{
    if (ADD_SC(&sh->done[0], 1) % par->nth == 0) __atomic_add_fetch(&SYNCS, 1, __ATOMIC_RELAXED);
    wake(par->team, &par->team->bar_cv, &par->team->sleepers);
}

/* A part of step s its owner has not claimed, now claimed by this member; or -1. */
static int share_take(const frnn_par *par, frnn_share *sh, int s)
{
    for (int j = 1; j < par->nth; j++) {
        const int r = (par->tid + j) % par->nth;
        if (LOAD(&sh->next[r][0]) == s && frnn_share_claim(sh, r, s)) {
            __atomic_add_fetch(&STEALS, 1, __ATOMIC_RELAXED);
            return r;
        }
    }
    return -1;
}

/* Whether some part of step s is unclaimed (its owner has not started it). */
static int share_open(const frnn_par *par, frnn_share *sh, int s)
{
    for (int r = 0; r < par->nth; r++)
        if (LOAD(&sh->next[r][0]) == s) return 1;
    return 0;
}

int frnn_share_await(const frnn_par *par, frnn_share *sh, int s, long long patience_ns)
{
    const int need = par->nth * (s + 1);
    if (LOAD(&sh->done[0]) >= need) return -1;
    STAT_BEGIN(ST_WAIT_WALL);
    /* Spin; a part still unclaimed once this member computed its own has an owner that is not
     * running (descheduled, or waking from a sleep). Take it after `patience` (a part's time):
     * an owner waking sooner costs no more than that; one descheduled for milliseconds no longer
     * stalls the step. */
    long long open_since = -1;
    int r = -1;
    for (int i = 0;; i++) {
        if (LOAD(&sh->done[0]) >= need) break;
        if (s > 0 && (i & 63) == 63) {    /* not at once: the owners' claim lines stay in their caches */
            if (!share_open(par, sh, s)) {
                if (i >= FRNN_SPINS) break;               /* all claimed: sleep below */
            } else if (open_since < 0) {
                open_since = now_ns();
            } else if (now_ns() - open_since >= patience_ns && (r = share_take(par, sh, s)) >= 0) {
                break;
            }
        } else if (s == 0 && i >= FRNN_SPINS) {
            break;
        }
        cpu_relax();
    }
    if (r < 0 && LOAD(&sh->done[0]) < need) {   /* every part is claimed (claims only grow): sleep */
        frnn_team *tm = par->team;
        pthread_mutex_lock(&tm->lock);
        __atomic_add_fetch(&tm->sleepers, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&sh->done[0], __ATOMIC_SEQ_CST) < need) pthread_cond_wait(&tm->bar_cv, &tm->lock);
        __atomic_sub_fetch(&tm->sleepers, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&tm->lock);
    }
    STAT_END(ST_WAIT_WALL);
    return r;
}

long long frnn_clock_ns(void) { return now_ns(); }

void frnn_test_stall(const frnn_par *par, int step, const frnn_share *sh)
{
    static int parsed, member = -2, us, every = 1;      /* -2: no stall */
    if (!LOAD(&parsed)) {
        const char *env = getenv("FASTRNN_TEST_STALL");
        int m, u, e;
        if (env && sscanf(env, "%d,%d,%d", &m, &u, &e) == 3 && u > 0 && e > 0)
            __atomic_store_n(&us, u, __ATOMIC_RELAXED), __atomic_store_n(&every, e, __ATOMIC_RELAXED),
            __atomic_store_n(&member, m < 0 ? -1 : m, __ATOMIC_RELAXED);
        STORE(&parsed, 1);
    }
    const int m = __atomic_load_n(&member, __ATOMIC_RELAXED);
    if (m == -2 || (m >= 0 && m != par->tid) || (step + 1) % __atomic_load_n(&every, __ATOMIC_RELAXED)) return;
    if (sh != NULL && par->tid < FRNN_SHARE_MAX && LOAD(&sh->next[par->tid][0]) != step) return;
    usleep((useconds_t)__atomic_load_n(&us, __ATOMIC_RELAXED));
}

static void *worker(void *p)
{
    frnn_team *tm = &TEAM;
    const int tid = (int)(size_t)p;
    unsigned seen = tm->born[tid];
    for (;;) {
        /* between two calls the caller runs Python for tens of microseconds: a worker that
         * slept would cost every call a wake-up (tens of microseconds on a VM) */
        wait_change_for(tm, &tm->job, seen, &tm->work_cv, &tm->work_sleepers, idle_spin_ns());
        seen = LOAD(&tm->job);
        /* the caller posts the next job only after every worker reported this one, so these
         * reads cannot see the next job's fields */
        const int nth = tm->nth;
        const unsigned workers = (unsigned)tm->started;
        if (tid < nth) {
            frnn_par par = {tid, nth, tm, NULL};
            STAT_SET_ME(tid);
            STAT_BEGIN(ST_TASK_WALL);
            tm->fn(tm->arg, &par);
            STAT_END(ST_TASK_WALL);
            STAT_LEAVE();
        }
        if (ADD_SC(&tm->done, 1) == workers) wake(tm, &tm->done_cv, &tm->done_sleepers);
    }
    return NULL;
}

/* After fork() only the forking thread exists in the child: forget the workers. */
static void atfork_child(void)
{
    frnn_team fresh = {.own = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
                         .work_cv = PTHREAD_COND_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER,
                         .bar_cv = PTHREAD_COND_INITIALIZER};
    TEAM = fresh;
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, atfork_child); }

/* Grow the team to `want` members; returns the member count actually available. */
static int ensure_workers(frnn_team *tm, int want)
{
    pthread_once(&ATFORK_ONCE, register_atfork);
    while (tm->started + 1 < want) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        tm->born[tm->started + 1] = LOAD(&tm->job);      /* it waits for the next job */
        int err = pthread_create(&th, &attr, worker, (void *)(size_t)(tm->started + 1));
        pthread_attr_destroy(&attr);
        if (err) break;                       /* fewer threads than asked: still correct */
        tm->started++;
    }
    return tm->started + 1;
}

void frnn_team_run(int nth, frnn_task fn, void *arg)
{
    frnn_team *tm = &TEAM;
    if (nth > FRNN_MAX_THREADS) nth = FRNN_MAX_THREADS;
    if (nth <= 1) {
        frnn_par par = {0, 1, tm, NULL};
#ifdef FRNN_TEAM_STATS
        if (STAT_IN) {                        /* a one-member call inside a task: its time is the task's */
            fn(arg, &par);
            return;
        }
#endif
        STAT_SET_ME(0);
        STAT_BEGIN(ST_TASK_WALL);
        fn(arg, &par);
        STAT_END(ST_TASK_WALL);
        STAT_LEAVE();
        return;
    }
    pthread_mutex_lock(&tm->own);
    nth = ensure_workers(tm, nth) < nth ? tm->started + 1 : nth;
    tm->fn = fn;
    tm->arg = arg;
    tm->nth = nth;
    STORE(&tm->done, 0);
    ADD_SC(&tm->job, 1);
    wake(tm, &tm->work_cv, &tm->work_sleepers);
    frnn_par par = {0, nth, tm, NULL};
    STAT_SET_ME(0);
    {
        STAT_BEGIN(ST_TASK_WALL);
        fn(arg, &par);
        STAT_END(ST_TASK_WALL);
        STAT_LEAVE();
    }
    for (unsigned d; (d = LOAD(&tm->done)) != (unsigned)tm->started;)
        wait_change(tm, &tm->done, d, &tm->done_cv, &tm->done_sleepers);
    pthread_mutex_unlock(&tm->own);
}

int frnn_default_threads(void)
{
    const char *env = getenv("FASTRNN_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n >= 1) return n > FRNN_MAX_THREADS ? FRNN_MAX_THREADS : (int)n;
    }
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)(n > FRNN_MAX_THREADS ? FRNN_MAX_THREADS : n) : 1;
}

void frnn_split(int n, int unit, int tid, int nth, int *lo, int *hi)
{
    const int blocks = (n + unit - 1) / unit;
    const int b0 = (int)((long)blocks * tid / nth), b1 = (int)((long)blocks * (tid + 1) / nth);
    *lo = b0 * unit < n ? b0 * unit : n;
    *hi = b1 * unit < n ? b1 * unit : n;
}
