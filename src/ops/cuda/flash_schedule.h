// How the flash-attention kernel's work is spread over the SMs (host arithmetic only, no CUDA).
//
// A unit is one 128-row query tile of one head; the kernel runs one CTA per SM, so U units of equal
// cost take ⌈U / SMs⌉ rounds, and a last round that is only partly full leaves the other SMs idle:
// 12 heads × 256 tiles (Wan 1.3B at 480p) are 23.3 rounds on 132 SMs, and the 24th runs 36 CTAs.
// The last units can instead have their keys cut into `parts` ranges, each run by its own CTA and
// merged afterwards by a small kernel (the log-sum-exp combination of the partial softmaxes), so
// the tail costs ⌈R·parts / SMs⌉ rounds of 1/parts of a unit plus each piece's fixed cost.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define X2V_FA3_HD __host__ __device__
#else
#define X2V_FA3_HD
#endif

namespace x2v::ops::cuda::fa3 {

// The flash kernel's tiles: 128 query rows per CTA, kKeyTile keys per pipeline stage.
constexpr int kQueryTile = 128;
constexpr int kKeyTile = 192;

// The first of the key tiles 0 .. n_tiles-1 that part p of `parts` runs; part p ends where p + 1 begins.
X2V_FA3_HD inline int range_begin(int n_tiles, int p, int parts) {
  return static_cast<int>(int64_t(n_tiles) * p / parts);
}

struct Schedule {
  int64_t units = 0;  // query tiles × heads
  int64_t whole = 0;  // units 0 .. whole-1 run whole, one CTA each
  int parts = 1;      // key ranges of each of the remaining units
  // Set by schedule_attention: query tiles per head (units = qtiles × heads), and CTAs per cluster
  // for the whole units (2: pairs of one head that share their K/V loads).
  int64_t qtiles = 0;
  int cluster = 1;
  int slots = 0;  // CTAs resident at once, as planned for
  int64_t split_units() const { return units - whole; }
  // Whole units plus split pieces: the largest unit or piece index the kernels compute.
  int64_t ctas() const { return whole + split_units() * parts; }
  // The whole units' launch: persistent CTAs, one per slot, CTA b running units b, b + grid, ... With
  // pairs both `whole` and `slots` are even, so the two CTAs of a cluster run the same number of units
  // (a pair waits on each other's barriers: unequal counts would hang) and units 2i, 2i + 1 land on one
  // cluster.
  int64_t persistent_ctas() const { return slots > 0 && slots < whole ? slots : whole; }
};

// Every unit run whole (parts == 1) or every unit split (for checks).
inline Schedule schedule_all(int64_t units, int parts) {
  return parts <= 1 ? Schedule{units, units, 1} : Schedule{units, 0, parts};
}

// The schedule with the fewest estimated rounds, in units of one whole unit's time: a piece of k key
// tiles costs (k + kPieceOverhead) / key_tiles, the prologue (Q load, pipeline fill) and the epilogue
// being worth about two tiles. Only the final round, or the final two, are considered for splitting,
// with up to kMaxParts parts of at least kMinTilesPerPart key tiles.
inline Schedule plan_schedule(int64_t units, int64_t key_tiles, int sms) {
  constexpr int kMaxParts = 8, kMinTilesPerPart = 16;
  constexpr double kPieceOverhead = 2.0;
  Schedule best = schedule_all(units, 1);
  if (units <= 0 || key_tiles <= 0 || sms <= 0 || units % sms == 0) return best;
  auto piece = [&](int parts) { return (double((key_tiles + parts - 1) / parts) + kPieceOverhead) / double(key_tiles); };
  double best_cost = double((units + sms - 1) / sms) * piece(1);
  for (int64_t tail = units % sms; tail <= units && tail < units % sms + 2 * sms; tail += sms)
    for (int parts = 2; parts <= kMaxParts && key_tiles / parts >= kMinTilesPerPart; ++parts) {
      const double cost = double((units - tail) / sms) * piece(1) + double((tail * parts + sms - 1) / sms) * piece(parts);
      // A split must win clearly: the merge kernel and the partial results' traffic are not in the model.
      if (cost < best_cost - 0.02) {
        best_cost = cost;
        best = Schedule{units, units - tail, parts};
      }
    }
  return best;
}

// The whole plan for Lq queries × Lk keys over H heads, in query tiles of block_m rows and key tiles of
// block_n: plan_schedule's split (or, force_parts ≥ 1, every unit in that many key ranges) on `slots`
// resident CTAs. pairs: the whole units run in clusters of two CTAs, query tiles 2i and 2i + 1 of one
// head, so each head's tile count is padded to even (a padding tile computes on zero queries and
// stores nothing) and the whole units are an even number (else no pairs).
inline Schedule schedule_attention(int64_t Lq, int64_t Lk, int64_t H, int block_m, int block_n, int slots,
                                   int force_parts, bool pairs) {
  int64_t qtiles = (Lq + block_m - 1) / block_m;
  if (pairs) qtiles += qtiles % 2;
  const int64_t units = qtiles * H;
  Schedule s = force_parts > 0 ? schedule_all(units, force_parts)
                               : plan_schedule(units, (Lk + block_n - 1) / block_n, slots);
  s.qtiles = qtiles;
  s.cluster = pairs && s.whole % 2 == 0 ? 2 : 1;
  s.slots = slots;
  return s;
}

}  // namespace x2v::ops::cuda::fa3
