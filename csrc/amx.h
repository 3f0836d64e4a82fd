/* amx.h - Intel AMX tiles for the bf16 and int8 products: a tiny tile API with two back ends, the
 * AMX instructions and an exact plain-C emulation of them, and the hooks gemm_bf16.c / gemm_int8.c
 * call (csrc/gemm_amx.c; the kernels, written once over the API, are in amx_kernels.h).
 *
 * The tile API (macros, so the hardware back end gets the immediate tile numbers it needs):
 *   TILE_BEGIN(cfg) / TILE_END()   load a tile configuration / release the tiles
 *   TILE_ZERO(t), TILE_LOAD(t, p, stride), TILE_STORE(t, p, stride)
 *   TILE_DPBF16PS(c, a, b)         c (fp32) += a (bf16 pairs) x b (bf16 pairs)
 *   TILE_DPBUSD(c, a, b)           c (s32) += a (u8 quads) x b (s8 quads)
 * The emulation (frnn_amx_emu_*) follows the Intel SDM's pseudo-code of each instruction:
 *   TDPBF16PS, per row m of c: two fp32 temporaries per output column n, both starting at +0:
 *       for k < a.colsb / 4:   t[2n+0] += a[m].bf16[2k+0] * b[k].bf16[2n+0]
 *                              t[2n+1] += a[m].bf16[2k+1] * b[k].bf16[2n+1]
 *       then                   c[m][n] = c[m][n] + (t[2n+0] + t[2n+1])
 *     every += one FMA "with DAZ=FTZ=1, RNE rounding, MXCSR neither consulted nor updated", the
 *     two additions likewise (bf16.h's frnn_bf16_fma: DAZ on each input, RNE, a result that is
 *     tiny after rounding flushed to a zero of its sign). So one instruction keeps the even and
 *     the odd products of its 32 values of k apart and adds them at the end -- not VDPBF16PS's
 *     order (odd, even, odd, even ... in one chain), hence a bound rather than identical bits
 *     against bf16.h's emulation (tests: csrc/test_amx.c, tests/test_amx.py).
 *   TDPBUSD: c[m][n] += sum over k < a.colsb / 4 and t < 4 of zero-extended a[m].u8[4k+t] times
 *     sign-extended b[k].s8[4n+t], in 32-bit wrap-around arithmetic: exact integers.
 *   Loads zero what lies past a tile's configured rows and columns, as the hardware does; the
 *   emulation aborts on the shape combinations the instructions refuse (#UD).
 *
 * The tile path runs (frnn_amx_mode) on the AMX CPU that the OS lets use it -- CPUID.(7,0):EDX
 * AMX-TILE (bit 24), AMX-BF16 (22) and AMX-INT8 (25), and Linux's arch_prctl(ARCH_REQ_XCOMP_PERM,
 * XFEATURE_XTILEDATA) granted -- or through the emulation when asked (FASTRNN_ISA=amx-emulated,
 * frnn_set_amx_mode): the same kernels and blocking either way.
 */
#ifndef FASTRNN_AMX_H
#define FASTRNN_AMX_H
#include <stddef.h>
#include <stdint.h>
#include "engine_bf16.h"
#include "int8.h"

/* x86-64 Linux (the tile state needs its arch_prctl) with a compiler that has the AMX intrinsics
 * (GCC >= 11, Clang >= 12); elsewhere only the emulation is compiled */
#if defined(__x86_64__) && defined(__linux__) && ((defined(__clang__) && __clang_major__ >= 12) \
                                                  || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define FRNN_AMX_HW 1
#else
#define FRNN_AMX_HW 0
#endif

#define FRNN_AMX_ROWS 16          /* a tile's rows: the tile path runs for products of >= this many rows */

/* The 64 bytes LDTILECFG reads (palette 1; unused tiles and reserved bytes zero). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} frnn_amx_cfg;

/* The emulated tile registers: 8 tiles of up to 16 rows x 64 bytes. */
typedef struct {
    uint8_t t[8][16][64];
    int rows[8], colsb[8];
} frnn_amx_emu;

void frnn_amx_emu_config(frnn_amx_emu *T, const frnn_amx_cfg *cfg);
void frnn_amx_emu_zero(frnn_amx_emu *T, int t);
void frnn_amx_emu_load(frnn_amx_emu *T, int t, const void *p, size_t stride);
void frnn_amx_emu_store(const frnn_amx_emu *T, int t, void *p, size_t stride);
void frnn_amx_emu_dpbf16ps(frnn_amx_emu *T, int c, int a, int b);
void frnn_amx_emu_dpbusd(frnn_amx_emu *T, int c, int a, int b);

/* What the CPU and the OS offer: bits FRNN_AMX_CPU_* (CPUID; PERM: Linux granted the tile data). */
enum { FRNN_AMX_CPU_TILE = 1, FRNN_AMX_CPU_BF16 = 2, FRNN_AMX_CPU_INT8 = 4, FRNN_AMX_CPU_PERM = 8 };
int frnn_amx_cpu(void);
int frnn_amx_supported(void);    /* all four: the hardware tile path can run */

/* Off, the AMX instructions, or their emulation. The default: FASTRNN_ISA=amx gives the hardware
 * (off where unsupported: the Python layer refuses that request with a message), amx-emulated the
 * emulation, another FASTRNN_ISA value off (an explicit vector ISA), unset the hardware where
 * supported and the float32 engine runs AVX-512. frnn_set_amx_mode(-1) goes back to the default;
 * a hardware request the CPU cannot run changes nothing. Both return the mode now in use. */
enum { FRNN_AMX_OFF = 0, FRNN_AMX_ON = 1, FRNN_AMX_EMULATED = 2 };
int frnn_amx_mode(void);
int frnn_set_amx_mode(int mode);
const char *frnn_amx_mode_name(int mode);

/* The hooks. frnn_amx_bf16_rows(M): a bf16 product of M rows (the whole product's rows, the same
 * on every member) goes to the tiles. frnn_amx_bpk_mul is frnn_bpk_mul on the tiles, for any M
 * (rows past a multiple of 16 padded with zeros); frnn_amx_q8_mul is frnn_q8_mul on the tiles
 * (same bits: integers), returning 0 when the tile path is off or short of memory (the caller
 * then runs its own path). */
int frnn_amx_bf16_rows(int M);
void frnn_amx_bpk_mul(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                      int round_a, float *C, size_t ldc, int accumulate);
int frnn_amx_q8_mul(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                    int beta, float *C, size_t ldc);

#endif
