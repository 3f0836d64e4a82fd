/* gemm_amx.c - AMX tiles for the bf16 and int8 products (amx.h): the exact emulation of the tile
 * instructions, the two back ends of the kernels in amx_kernels.h, detection, the mode, hooks. */
#define _GNU_SOURCE               /* syscall() for arch_prctl */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "amx.h"
#include "bf16.h"
#include "engine.h"

#if FRNN_AMX_HW
#include <immintrin.h>
#endif
#if FRNN_AMX_HW
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* ---- the emulation: the SDM's pseudo-code ---- */

static void emu_ud(const char *what)
{
    fprintf(stderr, "fastrnn: emulated AMX instruction with an invalid tile shape (#UD): %s\n", what);
    abort();
}

void frnn_amx_emu_config(frnn_amx_emu *T, const frnn_amx_cfg *cfg)
{
    memset(T->t, 0, sizeof T->t);      /* LDTILECFG zeroes the tile data */
    for (int t = 0; t < 8; t++) {
        T->rows[t] = cfg->rows[t], T->colsb[t] = cfg->colsb[t];
        if (T->rows[t] > 16 || T->colsb[t] > 64) emu_ud("a tile larger than 16 x 64 bytes");
    }
}

void frnn_amx_emu_zero(frnn_amx_emu *T, int t) { memset(T->t[t], 0, sizeof T->t[t]); }

void frnn_amx_emu_load(frnn_amx_emu *T, int t, const void *p, size_t stride)
{
    frnn_amx_emu_zero(T, t);           /* past the configured rows and columns: zeros */
    for (int r = 0; r < T->rows[t]; r++) memcpy(T->t[t][r], (const uint8_t *)p + (size_t)r * stride, (size_t)T->colsb[t]);
}

void frnn_amx_emu_store(const frnn_amx_emu *T, int t, void *p, size_t stride)
{
    for (int r = 0; r < T->rows[t]; r++) memcpy((uint8_t *)p + (size_t)r * stride, T->t[t][r], (size_t)T->colsb[t]);
}

static void emu_shapes(const frnn_amx_emu *T, int c, int a, int b)
{
    if (c == a || c == b || a == b) emu_ud("the three tiles must be distinct");
    if (T->colsb[c] % 4 || T->colsb[a] % 4 || T->colsb[b] % 4) emu_ud("colsb not a multiple of 4");
    if (T->colsb[c] != T->colsb[b]) emu_ud("dest.colsb != src2.colsb");
    if (T->colsb[a] / 4 != T->rows[b]) emu_ud("src1.colsb / 4 != src2.rows");
    if (T->rows[c] != T->rows[a]) emu_ud("dest.rows != src1.rows");
}

static float emu_f32(const uint8_t *p)
{
    float x;
    memcpy(&x, p, 4);
    return x;
}

static float emu_bf16(const uint8_t *p)
{
    uint16_t b;
    memcpy(&b, p, 2);
    return frnn_bf16_to_f32(b);        /* make_fp32: the 16 bits on top of a dword */
}

void frnn_amx_emu_dpbf16ps(frnn_amx_emu *T, int c, int a, int b)
{
    emu_shapes(T, c, a, b);
    const int ksteps = T->colsb[a] / 4, ncols = T->colsb[c] / 4;
    for (int m = 0; m < T->rows[c]; m++) {
        float temp[32];
        for (int i = 0; i < 32; i++) temp[i] = 0.0f;
        for (int k = 0; k < ksteps; k++)
            for (int n = 0; n < ncols; n++) {
                /* FP32 FMA with DAZ = FTZ = 1, RNE (frnn_bf16_fma) */
                temp[2 * n + 0] = frnn_bf16_fma(emu_bf16(T->t[a][m] + 4 * k), emu_bf16(T->t[b][k] + 4 * n), temp[2 * n + 0]);
                temp[2 * n + 1] = frnn_bf16_fma(emu_bf16(T->t[a][m] + 4 * k + 2), emu_bf16(T->t[b][k] + 4 * n + 2),
                                                temp[2 * n + 1]);
            }
        for (int n = 0; n < ncols; n++) {
            /* DAZ = FTZ = 1, RNE: x + y is fma(x, 1, y) rounded once */
            const float tmp = frnn_bf16_fma(temp[2 * n], 1.0f, temp[2 * n + 1]);
            const float r = frnn_bf16_fma(emu_f32(T->t[c][m] + 4 * n), 1.0f, tmp);
            memcpy(T->t[c][m] + 4 * n, &r, 4);
        }
        memset(T->t[c][m] + T->colsb[c], 0, (size_t)(64 - T->colsb[c]));   /* write_row_and_zero */
    }
}

void frnn_amx_emu_dpbusd(frnn_amx_emu *T, int c, int a, int b)
{
    emu_shapes(T, c, a, b);
    const int ksteps = T->colsb[a] / 4, ncols = T->colsb[c] / 4;
    for (int m = 0; m < T->rows[c]; m++) {
        for (int n = 0; n < ncols; n++) {
            uint32_t s;                    /* two's complement wrap-around, without signed overflow */
            memcpy(&s, T->t[c][m] + 4 * n, 4);
            for (int k = 0; k < ksteps; k++)
                for (int t = 0; t < 4; t++)
                    s += (uint32_t)((int32_t)T->t[a][m][4 * k + t] * (int32_t)(int8_t)T->t[b][k][4 * n + t]);
            memcpy(T->t[c][m] + 4 * n, &s, 4);
        }
        memset(T->t[c][m] + T->colsb[c], 0, (size_t)(64 - T->colsb[c]));
    }
}

/* ---- what the kernels share (no tile instructions) ---- */

typedef char frnn_amx_cfg_is_64_bytes[sizeof(frnn_amx_cfg) == 64 ? 1 : -1];

static void amx_cfg_bf16(frnn_amx_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->palette = 1;
    for (int t = 0; t < 8; t++) cfg->rows[t] = 16, cfg->colsb[t] = 64;
}

static void amx_cfg_q8(frnn_amx_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->palette = 1;
    for (int t = 0; t < 8; t++) cfg->rows[t] = 16, cfg->colsb[t] = t == 4 || t == 5 ? 64 : 32;
}

/* Columns [k0, k1) of `rows` rows of A, as bf16, into dst (row stride ld) for 16 or 32 rows:
 * zeros past K and past the rows. */
static void amx_stage_a(const float *A, size_t rsa, size_t csa, int rows, int K, int k0, int k1, uint16_t *dst,
                        int ld)
{
    const int padded = rows > 16 ? 32 : 16;
    for (int i = 0; i < padded; i++) {
        uint16_t *d = dst + (size_t)i * ld;
        for (int k = k0; k < k1; k++)
            d[k - k0] = i < rows && k < K ? frnn_bf16_from_f32(A[(size_t)i * rsa + (size_t)k * csa]) : 0;
    }
}

/* int8.h's epilogue (gemm_int8.c's epilogue_ref, the same operations): rows of a 16 x 8 block of
 * s32 sums whose first column is view column cb, to view columns [lo, hi) of C. */
static void amx_q8_epilogue(const frnn_q8_mat *W, const int32_t *acc, int rows, const float *sa, int cb, int lo,
                            int hi, int beta, float *C, size_t ldc)
{
    for (int i = 0; i < rows; i++) {
        float *c = C + (size_t)i * ldc;
        for (int n = lo; n < hi; n++) {
            const float v = (float)(acc[i * 8 + n - cb] - W->comp[n]) * (sa[i] * W->scale[n]);
            c[n] = beta ? c[n] + v : v;
        }
    }
}

/* ---- back end 1: the emulation ---- */
#define AMX_NAME(x) amx_emu_##x
#define AMX_ATTR
#define AMX_STAGE_A amx_stage_a
#define TILE_BEGIN(cfg) frnn_amx_emu T_; frnn_amx_emu_config(&T_, (cfg))
#define TILE_END() (void)0
#define TILE_ZERO(t) frnn_amx_emu_zero(&T_, (t))
#define TILE_LOAD(t, p, s) frnn_amx_emu_load(&T_, (t), (p), (s))
#define TILE_STORE(t, p, s) frnn_amx_emu_store(&T_, (t), (p), (s))
#define TILE_DPBF16PS(c, a, b) frnn_amx_emu_dpbf16ps(&T_, (c), (a), (b))
#define TILE_DPBUSD(c, a, b) frnn_amx_emu_dpbusd(&T_, (c), (a), (b))
#include "amx_kernels.h"
#undef AMX_NAME
#undef AMX_ATTR
#undef AMX_STAGE_A
#undef TILE_BEGIN
#undef TILE_END
#undef TILE_ZERO
#undef TILE_LOAD
#undef TILE_STORE
#undef TILE_DPBF16PS
#undef TILE_DPBUSD

/* ---- back end 2: the AMX instructions (x86-64; run only where frnn_amx_supported) ---- */
#if FRNN_AMX_HW
/* amx_stage_a with VCVTNEPS2BF16 for contiguous rows (every AMX CPU has AVX512-BF16): its
 * conversion is bf16.h's (RNE, DAZ, NaNs quiet), 16 values an instruction. Staging A is ~K
 * conversions per row against ~K x 32 products of a column pair: scalar, it would outweigh the
 * tiles. tests/test_amx.py::test_hardware_tiles_equal_the_emulation compares it on an AMX CPU. */
__attribute__((target("avx512f,avx512bf16"))) static void amx_stage_a_hw(const float *A, size_t rsa, size_t csa,
                                                                          int rows, int K, int k0, int k1,
                                                                          uint16_t *dst, int ld)
{
    if (csa != 1) {
        amx_stage_a(A, rsa, csa, rows, K, k0, k1, dst, ld);
        return;
    }
    const int padded = rows > 16 ? 32 : 16;
    for (int i = 0; i < padded; i++) {
        uint16_t *d = dst + (size_t)i * ld;
        if (i >= rows) {
            memset(d, 0, sizeof(uint16_t) * (size_t)(k1 - k0));
            continue;
        }
        const float *a = A + (size_t)i * rsa;
        const int kend = k1 < K ? k1 : K;
        int k = k0;
        for (; k + 16 <= kend; k += 16)
            _mm256_storeu_si256((__m256i *)(d + k - k0), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(a + k)));
        for (; k < kend; k++) d[k - k0] = frnn_bf16_from_f32(a[k]);
        for (; k < k1; k++) d[k - k0] = 0;
    }
}

#define AMX_NAME(x) amx_hw_##x
#define AMX_ATTR __attribute__((target("amx-tile,amx-bf16,amx-int8")))
#define AMX_STAGE_A amx_stage_a_hw
#define TILE_BEGIN(cfg) _tile_loadconfig(cfg)
#define TILE_END() _tile_release()
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_LOAD(t, p, s) _tile_loadd(t, (p), (long)(s))
#define TILE_STORE(t, p, s) _tile_stored(t, (p), (long)(s))
#define TILE_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)
#define TILE_DPBUSD(c, a, b) _tile_dpbusd(c, a, b)
#include "amx_kernels.h"
#endif

/* ---- detection and the mode ---- */

static int amx_probe(void)
{
    int bits = 0;
#if FRNN_AMX_HW
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        bits |= (d >> 24 & 1) ? FRNN_AMX_CPU_TILE : 0;
        bits |= (d >> 22 & 1) ? FRNN_AMX_CPU_BF16 : 0;
        bits |= (d >> 25 & 1) ? FRNN_AMX_CPU_INT8 : 0;
    }
    /* Linux (>= 5.16) hands the 8 KB of tile data to a process only on request:
     * arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18); 0 is granted */
    if ((bits & FRNN_AMX_CPU_TILE) && syscall(SYS_arch_prctl, 0x1023, 18) == 0) bits |= FRNN_AMX_CPU_PERM;
#endif
    return bits;
}

int frnn_amx_cpu(void)
{
    static int bits = -1;              /* probed once (a race only repeats the query) */
    int v = __atomic_load_n(&bits, __ATOMIC_RELAXED);
    if (v < 0) {
        v = amx_probe();
        __atomic_store_n(&bits, v, __ATOMIC_RELAXED);
    }
    return v;
}

int frnn_amx_supported(void) { return frnn_amx_cpu() == 15; }

static int AMX_MODE = -1;              /* -1: the default */

static int amx_default(void)
{
    const char *env = getenv("FASTRNN_ISA");
    if (env && !strcmp(env, "amx-emulated")) return FRNN_AMX_EMULATED;
    if (env && !strcmp(env, "amx")) return frnn_amx_supported() ? FRNN_AMX_ON : FRNN_AMX_OFF;
    if (env && *env) return FRNN_AMX_OFF;
    return frnn_amx_supported() && frnn_isa_active() == FRNN_ISA_AVX512 ? FRNN_AMX_ON : FRNN_AMX_OFF;
}

int frnn_amx_mode(void)
{
    const int m = __atomic_load_n(&AMX_MODE, __ATOMIC_ACQUIRE);
    return m < 0 ? amx_default() : m;
}

int frnn_set_amx_mode(int mode)
{
    if (mode < 0 || mode == FRNN_AMX_OFF || mode == FRNN_AMX_EMULATED || (mode == FRNN_AMX_ON && frnn_amx_supported()))
        __atomic_store_n(&AMX_MODE, mode, __ATOMIC_RELEASE);
    return frnn_amx_mode();
}

const char *frnn_amx_mode_name(int mode)
{
    return mode == FRNN_AMX_ON ? "amx" : mode == FRNN_AMX_EMULATED ? "amx-emulated" : "off";
}

/* ---- the hooks ---- */

/* The hardware tiles take over from a vector bf16 kernel (FASTRNN_BF16=emulated keeps the
 * portable emulation: no tiles); the emulated tiles run whatever the vector kernel. */
int frnn_amx_bf16_rows(int M)
{
    if (M < FRNN_AMX_ROWS) return 0;
    const int mode = frnn_amx_mode();
    return mode == FRNN_AMX_EMULATED || (mode == FRNN_AMX_ON && frnn_bf16_kernel() != FRNN_BF16_EMULATED);
}

void frnn_amx_bpk_mul(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                      int round_a, float *C, size_t ldc, int accumulate)
{
    (void)round_a;                     /* A is rounded to bf16 as it is staged (a bf16 value stays) */
    if (M <= 0 || p1 <= p0) return;
    const int kpad = (pk->Kp / 2 + 15) / 16 * 32;
    /* a row block's A for every chunk (NULL: staged a chunk at a time, the same values) */
    uint16_t *abuf = kpad > 0 ? malloc(sizeof(uint16_t) * 32 * (size_t)kpad) : NULL;
#if FRNN_AMX_HW
    if (frnn_amx_mode() == FRNN_AMX_ON) amx_hw_bf16_mul(pk, p0, p1, M, A, rsa, csa, C, ldc, accumulate, abuf);
    else
#endif
        amx_emu_bf16_mul(pk, p0, p1, M, A, rsa, csa, C, ldc, accumulate, abuf);
    free(abuf);
}

int frnn_amx_q8_mul(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                    int beta, float *C, size_t ldc)
{
    const int mode = frnn_amx_mode();
    if (M < FRNN_AMX_ROWS || mode == FRNN_AMX_OFF || (mode == FRNN_AMX_ON && frnn_q8_isa_active() == FRNN_Q8_REF)
        || W->Kp % 64)
        return 0;
    uint8_t *qa = malloc((size_t)32 * W->Kp);
    if (qa == NULL) return 0;
#if FRNN_AMX_HW
    if (mode == FRNN_AMX_ON) amx_hw_q8_mul(W, seg, u0, u1, M, A, lda, beta, C, ldc, qa);
    else
#endif
        amx_emu_q8_mul(W, seg, u0, u1, M, A, lda, beta, C, ldc, qa);
    free(qa);
    return 1;
}
