// Flash attention forward for Hopper (sm_90a), bf16, head dim 128, no mask: the DiT's self-attention.
// Written after the FlashAttention-3 design (Shah et al., 2024):
//   - one producer warp loads each 128-row query tile once and K/V tiles through the tensor memory
//     accelerator (TMA) into a two-stage shared-memory ring, completing on mbarriers;
//   - two consumer warpgroups of 64 query rows each run S = Q·Kᵀ and O += P·V as wgmma (operands
//     from shared memory, P from registers), with the online softmax in f32;
//   - inside each consumer the next tile's Q·Kᵀ is issued before the previous tile's P·V has finished,
//     and the two consumers take turns at the tensor cores (pingpong), so one's softmax runs under the
//     other's GEMMs;
//   - persistent CTAs, one per SM, each running query tiles in turn, the next one's loads under the
//     current one's last tiles;
//   - CTAs run in clusters of two, consecutive query tiles of one head, that share their K/V loads
//     through TMA multicast.
// On the H100: 674-684 TFLOP/s at 32 760 tokens × 40 heads (cuDNN's fused kernel in the same runs, 63
// and 64: 572-587), docs/performance.md.
// The file has no dependency on the rest of the backend (raw pointers and a stream), so the kernel
// can be built and checked on its own; flash_attention.cu wraps it for tensors.
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "ops/cuda/flash_schedule.h"

namespace x2v::ops::cuda::fa3 {

constexpr int kHeadDim = 128;
constexpr int kBlockM = kQueryTile;  // query rows per CTA: two consumer warpgroups of 64
constexpr int kStages = 2;
constexpr int kConsumers = 2;
constexpr int kThreads = 128 * (1 + kConsumers);

// A [rows][64] bf16 tile as TMA writes it with 128-byte swizzle: 128 bytes per row; two of them
// (head-dim halves) make one [rows][128] tile.
constexpr int kHalfTileQ = kBlockM * 64 * 2;
constexpr int kSmemQ = 2 * kHalfTileQ;

// kBlockN keys per pipeline stage, the N of the Q·Kᵀ wgmma: 192 (kKeyTile), the widest whose
// two-stage K/V ring fits in shared memory beside Q (225 KB of 227). On the H100, with paired CTAs,
// 192 ran at 675-678 TFLOP/s against 664-665 for FlashAttention-3's 176 at 32 760 tokens and
// 657-660 against 645-646 at 75 600 (run 60); 176 had beaten 128 before (docs/performance.md).
template <int kBlockN>
struct Tiles {
  static constexpr int kHalfTileKV = kBlockN * 64 * 2;
  static constexpr int kSmemK = kStages * 2 * kHalfTileKV;
  static constexpr int kSmemV = kStages * 2 * kHalfTileKV;
  static constexpr int kSmemBarriers = 8 * (2 + 4 * kStages);
  // +1024: the dynamic shared memory base is rounded up to the 1024-byte swizzle period.
  static constexpr int kSmemBytes = kSmemQ + kSmemK + kSmemV + kSmemBarriers + 1024;
  static constexpr int kAcc = kBlockN / 2;  // S accumulators per thread
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define X2V_FA3_DEVICE 1
#endif

namespace dev {

#ifdef X2V_FA3_DEVICE
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// Arrives on the barrier at the same shared-memory offset in cluster CTA `rank`. Release at CTA scope,
// as for a local arrive: what it orders is this CTA's reads of its own shared memory (the consumed
// stage) before the peer's copy overwrites them.
__device__ __forceinline__ void mbar_arrive_remote(uint32_t bar, uint32_t rank) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(bar), "r"(rank));
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
}
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}
// Every thread of every CTA in the cluster.
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;" ::: "memory");
}
// Blocks until the phase with the given parity has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}

__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

// The same box into the same shared-memory offset of every CTA in `mask`, each CTA's barrier at `bar`
// counting the bytes that land there.
__device__ __forceinline__ void tma_load_multicast(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1,
                                                   int c2, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, {%3, "
      "%4, %5}], [%2], %6;" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "h"(mask)
      : "memory");
}

// wgmma shared-memory operand descriptor, 128-byte swizzle. K-major tiles (Q, K) use only the
// stride between 8-row groups; the MN-major V tile also needs the stride between 64-column panels.
__device__ __forceinline__ uint64_t gmma_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accumulator reads or writes across a wgmma wait.
template <int N>
__device__ __forceinline__ void fence_regs(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_regs(uint32_t (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

#define X2V_ACC8(d, i)                                                                                    \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
      "+f"(d[i + 7])
#define X2V_ACC64(d)                                                                                         \
  X2V_ACC8(d, 0), X2V_ACC8(d, 8), X2V_ACC8(d, 16), X2V_ACC8(d, 24), X2V_ACC8(d, 32), X2V_ACC8(d, 40), \
      X2V_ACC8(d, 48), X2V_ACC8(d, 56)
#define X2V_ACC96(d) \
  X2V_ACC64(d), X2V_ACC8(d, 64), X2V_ACC8(d, 72), X2V_ACC8(d, 80), X2V_ACC8(d, 88)
#define X2V_REGS96 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, " \
  "%43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, " \
  "%85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95}"
#define X2V_REGS64                                                                                          \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "  \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d (+)= A·B for a 64×192×16 step, A and B from shared memory, both K-major.
__device__ __forceinline__ void wgmma_ss(float (&d)[96], uint64_t da, uint64_t db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %98, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n192k16.f32.bf16.bf16 " X2V_REGS96 ", %96, %97, p, 1, 1, 0, 0;\n}\n"
      : X2V_ACC96(d)
      : "l"(da), "l"(db), "r"(accumulate));
}

// d[64] += A·B for a 64×128×16 step, A from registers (bf16 pairs), B from shared memory MN-major.
__device__ __forceinline__ void wgmma_rs(float (&d)[64], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint64_t db) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " X2V_REGS64
      ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n}\n"
      : X2V_ACC64(d)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db));
}
#undef X2V_ACC8
#undef X2V_ACC64
#undef X2V_REGS64
#undef X2V_ACC96
#undef X2V_REGS96

// Pingpong between the two consumer warpgroups (named barriers 1 and 2, 256 threads each): a
// warpgroup issues its GEMMs only when the other has issued its own, so one's softmax runs while the
// other's GEMMs occupy the tensor cores.
__device__ __forceinline__ void bar_sync(int id) { asm volatile("bar.sync %0, 256;" ::"r"(id) : "memory"); }
__device__ __forceinline__ void bar_arrive(int id) { asm volatile("bar.arrive %0, 256;" ::"r"(id) : "memory"); }

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Thread t of a consumer warpgroup holds, of a 64×N accumulator tile (S: N = kBlockN, O: N = 128), rows
// r = 16·(t/32) + (t%32)/4 and r + 8, columns 8j + 2(t%4) + {0, 1} for j < N/8: d[4j + e] is row r,
// d[4j + 2 + e] row r + 8.
struct RowState {
  float m[2];  // running max of the scaled logits, in log2 units
  float l[2];  // this thread's part of the row sums
};

// Masks keys ≥ valid (only the last tile has any) and turns S into P = exp2(S·scale − m) in place,
// updating the running max; returns the factor the previous O and l must be scaled by, per row.
template <bool kFirst, int kAcc>
__device__ __forceinline__ void online_softmax(float (&s)[kAcc], RowState& st, float scale_log2, int valid,
                                               float (&corr)[2]) {
  constexpr int kCols = kAcc / 4;  // 8-column groups
  const int col0 = 2 * (threadIdx.x % 4);
  if (valid < 2 * kAcc) {
#pragma unroll
    for (int j = 0; j < kCols; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (8 * j + col0 + e >= valid) s[4 * j + e] = s[4 * j + 2 + e] = -INFINITY;
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float mx = s[2 * h];
#pragma unroll
    for (int j = 0; j < kCols; ++j) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * h], s[4 * j + 2 * h + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
    const float m_new = kFirst ? mx * scale_log2 : fmaxf(st.m[h], mx * scale_log2);
    corr[h] = kFirst ? 0.f : ex2(st.m[h] - m_new);
    st.m[h] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < kCols; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float p = ex2(fmaf(s[4 * j + 2 * h + e], scale_log2, -m_new));
        s[4 * j + 2 * h + e] = p;
        sum += p;
      }
    st.l[h] = kFirst ? sum : st.l[h] * corr[h] + sum;
  }
}

// P (f32 accumulator layout) → bf16 A fragments: the accumulator of columns 16k..16k+15 is exactly the
// register A operand of the k-th 16-key step.
template <int kAcc>
__device__ __forceinline__ void to_a_frags(const float (&s)[kAcc], uint32_t (&p)[kAcc / 2]) {
#pragma unroll
  for (int i = 0; i < kAcc / 2; ++i) p[i] = pack_bf16(s[2 * i], s[2 * i + 1]);
}
#endif  // X2V_FA3_DEVICE

}  // namespace dev

// q/k/v as 3-d tensor maps over [L, H, 128]; boxes of 64 head-dim columns × 1 head × 128 query rows
// (Q) or kBlockN key rows (K, V). Rows past L load as zeros: the last key tile is masked, and output
// rows past Lq are not stored.
// kSplit = false: persistent CTAs; CTA b runs units b, b + gridDim, b + 2·gridDim, ... below `whole`
// (unit u: query tile u % n_qtiles of head u / n_qtiles), each over all keys, and writes out. The
// producer loads the next unit's Q as soon as both consumers have issued their last Q·Kᵀ of the
// current one, and its first K/V tiles as the ring frees, so the unit boundary costs no pipeline
// fill and no CTA start: against one CTA per unit, −0.2 % kernel time under ncu (14B and 1.3B) and
// 674–684 against 669–670 TFLOP/s free-running (14B 480p, run 63).
// kSplit = true: CTA b runs key range b % parts of unit whole + b / parts and leaves the range's
// unnormalized O and each row's (max, sum) in part_o / part_ml for combine_parts (flash_schedule.h).
// Two instantiations, so that the whole-unit kernel carries none of the split's bookkeeping through
// its main loop.
// kCluster = 2 (launched in clusters of two CTAs, with an even grid, so that a pair always runs units
// 2i and 2i + 1 of one head): each CTA loads one head-dim half of every K and V tile and multicasts
// it into both CTAs' shared memory, so the pair reads K and V from L2 once instead of twice. A stage
// is refilled only when the consumers of both CTAs have released it. Every CTA streams its head's
// whole K and V (16.8 MB at 32 760 keys, about 5 TB/s from L2 across the chip in the 14B's
// self-attention), and at the card's power limit that traffic costs time: a test kernel that skipped
// every other tile's loads ran 5 % faster, and the pairs ran at 670 TFLOP/s against 618 for CTAs
// alone (run 55).
template <int kBlockN, bool kSplit, int kCluster>
__global__ void __launch_bounds__(kThreads, 1)
    attention_fwd(const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap tk,
                  const __grid_constant__ CUtensorMap tv, __nv_bfloat16* __restrict__ out,
                  float* __restrict__ part_o, float2* __restrict__ part_ml, int Lq, int Lk, int H, int n_qtiles,
                  int whole, int parts, float scale_log2) {
#ifdef X2V_FA3_DEVICE
  using namespace dev;
  using T = Tiles<kBlockN>;
  constexpr int kHalfTileKV = T::kHalfTileKV, kAcc = T::kAcc;
  extern __shared__ uint8_t smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023) & ~1023u;
  const uint32_t sq = base, sk = sq + kSmemQ, sv = sk + T::kSmemK, bars = sv + T::kSmemV;
  const uint32_t q_full = bars, q_empty = bars + 8;
  auto k_full = [&](int s) { return bars + 8 * (2 + s); };
  auto k_empty = [&](int s) { return bars + 8 * (2 + kStages + s); };
  auto v_full = [&](int s) { return bars + 8 * (2 + 2 * kStages + s); };
  auto v_empty = [&](int s) { return bars + 8 * (2 + 3 * kStages + s); };

  // The i-th unit of this CTA, or -1 past its last.
  auto unit_of = [&](int i) -> int {
    if constexpr (kSplit) return i == 0 ? whole + static_cast<int>(blockIdx.x) / parts : -1;
    const int64_t u = blockIdx.x + int64_t(i) * gridDim.x;
    return u < whole ? static_cast<int>(u) : -1;
  };
  // Its key tiles nb0 .. nb0 + n_blocks - 1 of the row's n_all (all of them for a whole unit).
  const int n_all = (Lk + kBlockN - 1) / kBlockN;
  const int part = kSplit ? static_cast<int>(blockIdx.x) % parts : 0;
  const int nb0 = kSplit ? range_begin(n_all, part, parts) : 0;
  const int n_blocks = kSplit ? range_begin(n_all, part + 1, parts) - nb0 : n_all;
  const int wg = threadIdx.x / 128;

  static_assert(kCluster == 1 || (kCluster == 2 && !kSplit), "pairs of CTAs for whole units only");
  const uint32_t rank = kCluster > 1 ? cluster_rank() : 0;
  if (threadIdx.x == 0) {
    mbar_init(q_full, 1);
    mbar_init(q_empty, kConsumers);
    for (int s = 0; s < kStages; ++s) {
      mbar_init(k_full(s), 1);
      mbar_init(v_full(s), 1);
      mbar_init(k_empty(s), kConsumers * kCluster);
      mbar_init(v_empty(s), kConsumers * kCluster);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  // The peer's barriers must exist before anything multicasts into it or arrives on them.
  if constexpr (kCluster > 1) cluster_sync();
  else __syncthreads();

  if (wg == 0) {
    // Producer: one thread issues every copy; the warpgroup gives its registers to the consumers.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
    if (threadIdx.x == 0) {
      int g = 0;  // K/V tiles loaded so far, over all units: stage g % kStages, its (g / kStages)-th use
      for (int i = 0;; ++i) {
        const int unit = unit_of(i);
        if (unit < 0) break;
        const int head = unit / n_qtiles, m0 = (unit % n_qtiles) * kBlockM;
        mbar_wait(q_empty, (i & 1) ^ 1);  // a fresh barrier counts as released
        mbar_expect_tx(q_full, kSmemQ);
        tma_load(sq, &tq, q_full, 0, head, m0);
        tma_load(sq + kHalfTileQ, &tq, q_full, 64, head, m0);
        // One K or V tile into the stage at `dst` once its consumers have released it. Both head-dim
        // halves land here; with a pair, this CTA loads half `rank` for both CTAs.
        auto load_tile = [&](const CUtensorMap* map, uint32_t dst, uint32_t full, uint32_t empty, uint32_t parity,
                             int key0) {
          mbar_wait(empty, parity);
          mbar_expect_tx(full, 2 * kHalfTileKV);
          if constexpr (kCluster > 1) {
            tma_load_multicast(dst + rank * kHalfTileKV, map, full, 64 * rank, head, key0, 0x3);
          } else {
            tma_load(dst, map, full, 0, head, key0);
            tma_load(dst + kHalfTileKV, map, full, 64, head, key0);
          }
        };
        for (int n = 0; n < n_blocks; ++n, ++g) {
          const int s = g % kStages;
          const uint32_t parity = ((g / kStages) & 1) ^ 1;
          const int key0 = (nb0 + n) * kBlockN;
          load_tile(&tk, sk + s * 2 * kHalfTileKV, k_full(s), k_empty(s), parity, key0);
          load_tile(&tv, sv + s * 2 * kHalfTileKV, v_full(s), v_empty(s), parity, key0);
        }
      }
    }
    // The peer may still write into this CTA's shared memory or arrive on its barriers.
    if constexpr (kCluster > 1) cluster_sync();
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
  const int c = wg - 1;  // consumer index: query rows c·64 .. c·64+63 of the tile
  const bool leader = threadIdx.x % 128 == 0;
  // A consumed stage goes back to the producers of every CTA that writes into it.
  auto release = [&](uint32_t bar) {
    if (!leader) return;
    mbar_arrive(bar);
    if constexpr (kCluster > 1) mbar_arrive_remote(bar, rank ^ 1);
  };
  const uint32_t q_rows = sq + c * 64 * 128;

  auto issue_qk = [&](float (&s)[kAcc], int stage) {
    const uint32_t kb = sk + stage * 2 * kHalfTileKV;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int kk = 0; kk < 4; ++kk)
        wgmma_ss(s, gmma_desc(q_rows + h * kHalfTileQ + kk * 32, 16, 1024),
                 gmma_desc(kb + h * kHalfTileKV + kk * 32, 16, 1024), h | kk);
  };
  auto issue_pv = [&](float (&o)[64], const uint32_t (&p)[kAcc / 2], int stage) {
    const uint32_t vb = sv + stage * 2 * kHalfTileKV;
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
      wgmma_rs(o, p[4 * kk], p[4 * kk + 1], p[4 * kk + 2], p[4 * kk + 3],
               gmma_desc(vb + kk * 16 * 128, kHalfTileKV, 1024));
  };
  auto valid_keys = [&](int n) { return nb0 + n == n_all - 1 ? Lk - (nb0 + n) * kBlockN : kBlockN; };

  // Turns: n_blocks + 1 issue points per warpgroup and unit; consumer 1 lets consumer 0 go first and
  // skips its very last hand-over, so every arrive meets a sync.
  auto my_turn = [&] { bar_sync(1 + c); };
  auto your_turn = [&](bool last) {
    if (!(last && c == 1)) bar_arrive(2 - c);
  };
  if (c == 1) bar_arrive(1);

  int g = 0;  // K/V tiles consumed so far, over all units (the producer's count)
  for (int i = 0; unit_of(i) >= 0; ++i) {
    auto stage_of = [&](int n) { return (g + n) % kStages; };
    auto phase_of = [&](int n) { return static_cast<uint32_t>(((g + n) / kStages) & 1); };

    float o[64];
#pragma unroll
    for (int j = 0; j < 64; ++j) o[j] = 0.f;
    float s[kAcc];
    uint32_t p[kAcc / 2];
    RowState st;
    float corr[2];

    mbar_wait(q_full, i & 1);
    // Tile 0: Q·K₀ᵀ and its softmax; no P·V in flight yet.
    mbar_wait(k_full(stage_of(0)), phase_of(0));
    my_turn();
    wgmma_fence();
    issue_qk(s, stage_of(0));
    wgmma_commit();
    your_turn(false);
    wgmma_wait<0>();
    fence_regs(s);
    release(k_empty(stage_of(0)));
    if (n_blocks == 1 && leader) mbar_arrive(q_empty);  // the unit's last use of Q
    online_softmax<true>(s, st, scale_log2, valid_keys(0), corr);
    to_a_frags(s, p);

    for (int n = 1; n < n_blocks; ++n) {
      const int stage = stage_of(n), prev = stage_of(n - 1);
      mbar_wait(k_full(stage), phase_of(n));
      mbar_wait(v_full(prev), phase_of(n - 1));
      my_turn();
      wgmma_fence();
      issue_qk(s, stage);
      wgmma_commit();
      issue_pv(o, p, prev);
      wgmma_commit();
      your_turn(false);
      wgmma_wait<1>();  // Q·Kₙᵀ done; P·Vₙ₋₁ may still run
      fence_regs(s);
      release(k_empty(stage));
      if (n == n_blocks - 1 && leader) mbar_arrive(q_empty);  // Q may take the next unit's rows
      online_softmax<false>(s, st, scale_log2, valid_keys(n), corr);
      wgmma_wait<0>();
      fence_regs(o);
      fence_regs(p);
      release(v_empty(prev));
      // Once the running maxima settle most tiles change none of a warp's; skipping the ×1 is exact.
      if (__any_sync(0xffffffff, corr[0] != 1.f || corr[1] != 1.f)) {
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          o[4 * j] *= corr[0];
          o[4 * j + 1] *= corr[0];
          o[4 * j + 2] *= corr[1];
          o[4 * j + 3] *= corr[1];
        }
      }
      to_a_frags(s, p);
    }
    {
      const int last = stage_of(n_blocks - 1);
      mbar_wait(v_full(last), phase_of(n_blocks - 1));
      my_turn();
      wgmma_fence();
      issue_pv(o, p, last);
      wgmma_commit();
      your_turn(unit_of(i + 1) < 0);
      wgmma_wait<0>();
      fence_regs(o);
      release(v_empty(last));
    }
    g += n_blocks;

    // O / l, rows past Lq dropped; a key range's O unnormalized, with its rows' (max, sum). (The unit
    // is recomputed here rather than kept through the main loop, whose registers are all taken.)
    const int unit = unit_of(i), head = unit / n_qtiles, m0 = (unit % n_qtiles) * kBlockM;
    const int t = threadIdx.x % 128;
    const int rl0 = c * 64 + 16 * (t / 32) + (t % 32) / 4;
    const int col0 = 2 * (t % 4);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = st.l[h];
      l += __shfl_xor_sync(0xffffffff, l, 1);
      l += __shfl_xor_sync(0xffffffff, l, 2);
      const int rl = rl0 + 8 * h;
      if (m0 + rl >= Lq) continue;
      if constexpr (kSplit) {
        float* dst = part_o + (static_cast<int64_t>(blockIdx.x) * kBlockM + rl) * kHeadDim + col0;
#pragma unroll
        for (int j = 0; j < 16; ++j)
          *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[4 * j + 2 * h], o[4 * j + 2 * h + 1]);
        if (t % 4 == 0) part_ml[static_cast<int64_t>(blockIdx.x) * kBlockM + rl] = make_float2(st.m[h], l);
      } else {
        const float inv = 1.f / l;
        __nv_bfloat16* dst = out + (static_cast<int64_t>(m0 + rl) * H + head) * kHeadDim + col0;
#pragma unroll
        for (int j = 0; j < 16; ++j)
          *reinterpret_cast<uint32_t*>(dst + 8 * j) = pack_bf16(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
      }
    }
  }
  if constexpr (kCluster > 1) cluster_sync();
#endif  // X2V_FA3_DEVICE
}

// Merges the key ranges of the split units: O = Σ 2^(m_p − M)·O_p / Σ 2^(m_p − M)·l_p, M = max m_p. One
// thread per 4 columns of a row: grid (split units, kBlockM / 4), 128 threads.
__global__ void combine_parts(const float* __restrict__ part_o, const float2* __restrict__ part_ml,
                              __nv_bfloat16* __restrict__ out, int Lq, int H, int n_qtiles, int whole, int parts) {
  const int unit = whole + static_cast<int>(blockIdx.x);
  const int head = unit / n_qtiles, rl = blockIdx.y * 4 + threadIdx.x / 32;
  const int row = (unit % n_qtiles) * kBlockM + rl, col = 4 * (threadIdx.x % 32);
  if (row >= Lq) return;
  const int64_t slot0 = int64_t(blockIdx.x) * parts;
  float mx = -INFINITY;
  for (int p = 0; p < parts; ++p) mx = fmaxf(mx, part_ml[(slot0 + p) * kBlockM + rl].x);
  float l = 0.f, acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int p = 0; p < parts; ++p) {
    const float2 ml = part_ml[(slot0 + p) * kBlockM + rl];
    const float w = exp2f(ml.x - mx);
    const float4 o = *reinterpret_cast<const float4*>(part_o + ((slot0 + p) * kBlockM + rl) * kHeadDim + col);
    l += w * ml.y;
    acc[0] += w * o.x, acc[1] += w * o.y, acc[2] += w * o.z, acc[3] += w * o.w;
  }
  const float inv = 1.f / l;
  __nv_bfloat162* dst = reinterpret_cast<__nv_bfloat162*>(out + (static_cast<int64_t>(row) * H + head) * kHeadDim + col);
  dst[0] = __floats2bfloat162_rn(acc[0] * inv, acc[1] * inv);
  dst[1] = __floats2bfloat162_rn(acc[2] * inv, acc[3] * inv);
}

// Host side. Returns null on success, else why the kernel cannot run this case.
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

inline EncodeTiled encode_tiled() {
  // The driver's entry point through the runtime, so the program links no libcuda.
  static EncodeTiled fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      p = nullptr;
    return reinterpret_cast<EncodeTiled>(p);
  }();
  return fn;
}

// [L, H, 128] bf16, rows of H·128 elements; 64-column × 128-row boxes, 128-byte swizzle.
inline bool make_map(CUtensorMap* map, const void* ptr, int L, int H, int box_rows) {
  const cuuint64_t dims[3] = {kHeadDim, static_cast<cuuint64_t>(H), static_cast<cuuint64_t>(L)};
  const cuuint64_t strides[2] = {kHeadDim * 2, static_cast<cuuint64_t>(H) * kHeadDim * 2};
  const cuuint32_t box[3] = {64, 1, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem[3] = {1, 1, 1};
  return encode_tiled()(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(ptr), dims, strides, box, elem,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The launch of `ctas` CTAs of the paired whole-unit kernel, in clusters of two; `attr` holds the
// cluster shape the config points to.
template <int kBlockN>
inline cudaLaunchConfig_t pair_launch(unsigned ctas, cudaStream_t stream, cudaLaunchAttribute* attr) {
  attr->id = cudaLaunchAttributeClusterDimension;
  attr->val.clusterDim.x = 2, attr->val.clusterDim.y = 1, attr->val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(ctas), cfg.blockDim = dim3(kThreads), cfg.dynamicSmemBytes = Tiles<kBlockN>::kSmemBytes;
  cfg.stream = stream, cfg.attrs = attr, cfg.numAttrs = 1;
  return cfg;
}

// CTAs of the paired whole-unit kernel resident at once on this device (two per cluster that fits), or
// 0 where clusters of two cannot run it.
template <int kBlockN = kKeyTile>
inline int pair_slots() {
  static const int n = [] {
    if (cudaFuncSetAttribute(attention_fwd<kBlockN, false, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             Tiles<kBlockN>::kSmemBytes) != cudaSuccess)
      return 0;
    cudaLaunchAttribute attr{};
    const cudaLaunchConfig_t cfg = pair_launch<kBlockN>(2, nullptr, &attr);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, attention_fwd<kBlockN, false, 2>, &cfg) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return 2 * clusters;
  }();
  return n;
}
// Bytes of the partial results a schedule needs (part_o, then part_ml).
inline size_t partial_bytes(const Schedule& s) {
  return static_cast<size_t>(s.split_units()) * s.parts * kBlockM * (kHeadDim * sizeof(float) + sizeof(float2));
}

// out = softmax(scale · q·kᵀ)·v per head; q [Lq, H, 128], k/v [Lk, H, 128], out [Lq, H, 128], all bf16;
// `partial` holds partial_bytes(sched) (may be null when that is 0).
template <int kBlockN = kKeyTile>
inline const char* attention(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                             __nv_bfloat16* out, int Lq, int Lk, int H, float scale, const Schedule& sched,
                             void* partial, cudaStream_t stream) {
  if (Lq < 1 || Lk < 1 || H < 1) return "empty";
  if ((reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(k) | reinterpret_cast<uintptr_t>(v)) & 15)
    return "q, k and v must be 16-byte aligned";
  const int64_t min_qtiles = (Lq + kBlockM - 1) / kBlockM;
  if (sched.qtiles < min_qtiles || sched.qtiles > min_qtiles + 1 || sched.units != sched.qtiles * H ||
      sched.whole < 0 || sched.whole > sched.units || sched.parts < 1 || (sched.cluster != 1 && sched.cluster != 2) ||
      sched.whole % sched.cluster != 0 || (sched.cluster == 2 && (sched.qtiles % 2 != 0 || sched.slots % 2 != 0)))
    return "the schedule does not match the problem";
  const int n_qtiles = static_cast<int>(sched.qtiles);
  if (sched.ctas() > INT32_MAX) return "more query tiles than the kernel's 32-bit indexing";
  if (sched.split_units() > 0 && (sched.parts > (Lk + kBlockN - 1) / kBlockN || !partial))
    return "a split schedule needs at least one key tile per part, and partial storage";
  if (!encode_tiled()) return "the driver has no cuTensorMapEncodeTiled";
  CUtensorMap tq, tk, tv;
  if (!make_map(&tq, q, Lq, H, kBlockM) || !make_map(&tk, k, Lk, H, kBlockN) || !make_map(&tv, v, Lk, H, kBlockN))
    return "cuTensorMapEncodeTiled refused the shape";
  static const bool attr_ok =
      cudaFuncSetAttribute(attention_fwd<kBlockN, false, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           Tiles<kBlockN>::kSmemBytes) == cudaSuccess &&
      cudaFuncSetAttribute(attention_fwd<kBlockN, false, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           Tiles<kBlockN>::kSmemBytes) == cudaSuccess &&
      cudaFuncSetAttribute(attention_fwd<kBlockN, true, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           Tiles<kBlockN>::kSmemBytes) == cudaSuccess;
  if (!attr_ok) return "the device does not grant the shared memory the kernel needs";
  const float scale_log2 = scale * 1.4426950408889634f;
  const int whole = static_cast<int>(sched.whole), parts = sched.parts;
  const auto persistent = static_cast<unsigned>(sched.persistent_ctas());
  if (whole > 0 && sched.cluster == 2) {
    cudaLaunchAttribute attr{};
    const cudaLaunchConfig_t cfg = pair_launch<kBlockN>(persistent, stream, &attr);
    if (cudaLaunchKernelEx(&cfg, attention_fwd<kBlockN, false, 2>, tq, tk, tv, out, static_cast<float*>(nullptr),
                           static_cast<float2*>(nullptr), Lq, Lk, H, n_qtiles, whole, parts, scale_log2) != cudaSuccess)
      return "the paired (cluster) launch failed";
  } else if (whole > 0) {
    attention_fwd<kBlockN, false, 1><<<persistent, kThreads, Tiles<kBlockN>::kSmemBytes, stream>>>(
        tq, tk, tv, out, nullptr, nullptr, Lq, Lk, H, n_qtiles, whole, parts, scale_log2);
  }
  if (sched.split_units() > 0) {
    float* part_o = static_cast<float*>(partial);
    float2* part_ml = reinterpret_cast<float2*>(part_o + sched.split_units() * parts * kBlockM * kHeadDim);
    const auto pieces = static_cast<unsigned>(sched.split_units() * parts);
    attention_fwd<kBlockN, true, 1><<<pieces, kThreads, Tiles<kBlockN>::kSmemBytes, stream>>>(
        tq, tk, tv, out, part_o, part_ml, Lq, Lk, H, n_qtiles, whole, parts, scale_log2);
    combine_parts<<<dim3(static_cast<unsigned>(sched.split_units()), kBlockM / 4), 128, 0, stream>>>(
        part_o, part_ml, out, Lq, H, n_qtiles, whole, parts);
  }
  return nullptr;
}

}  // namespace x2v::ops::cuda::fa3
