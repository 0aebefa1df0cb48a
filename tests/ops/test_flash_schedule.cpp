// The flash kernel's CTA schedule (host arithmetic, so it is checked on every build): the key ranges
// partition each row, and the planned split shortens the run as a simulation of the hardware's
// in-order CTA dispatch measures it, not only by the planner's own estimate.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <queue>
#include <vector>

#include "ops/cuda/flash_schedule.h"

using namespace x2v::ops::cuda::fa3;

namespace {

// Makespan of the schedule's CTAs dispatched in blockIdx order, each to the first SM that is free; a
// piece of k key tiles takes k + overhead time units.
double simulate(const Schedule& s, int64_t key_tiles, int sms, double overhead) {
  std::priority_queue<double, std::vector<double>, std::greater<double>> free_at;
  for (int i = 0; i < sms; ++i) free_at.push(0.0);
  double end = 0.0;
  auto run = [&](double cost) {
    const double t = free_at.top() + cost;
    free_at.pop();
    free_at.push(t);
    end = std::max(end, t);
  };
  for (int64_t u = 0; u < s.whole; ++u) run(double(key_tiles) + overhead);
  for (int64_t u = 0; u < s.split_units(); ++u)
    for (int p = 0; p < s.parts; ++p)
      run(double(range_begin(int(key_tiles), p + 1, s.parts) - range_begin(int(key_tiles), p, s.parts)) + overhead);
  return end;
}

}  // namespace

TEST(FlashSchedule, KeyRangesPartitionEveryRow) {
  for (int n : {1, 2, 16, 24, 187, 430})
    for (int parts = 1; parts <= std::min(n, 8); ++parts) {
      EXPECT_EQ(range_begin(n, 0, parts), 0);
      EXPECT_EQ(range_begin(n, parts, parts), n);
      for (int p = 0; p < parts; ++p) EXPECT_GE(range_begin(n, p + 1, parts) - range_begin(n, p, parts), n / parts);
    }
}

TEST(FlashSchedule, Wan13bAt480pSplitsItsLastRound) {
  // 12 heads × 256 query tiles of 32 760 rows, over 171 key tiles of 192, on 132 SMs: 23 full rounds
  // and 36 CTAs left over.
  const int64_t key_tiles = (32760 + kKeyTile - 1) / kKeyTile;
  ASSERT_EQ(key_tiles, 171);
  const Schedule s = plan_schedule(12 * 256, key_tiles, 132);
  EXPECT_EQ(s.units, 3072);
  EXPECT_EQ(s.whole, 23 * 132);
  EXPECT_GE(s.parts, 3);
  EXPECT_EQ(s.ctas(), 23 * 132 + 36 * s.parts);
  const double whole = simulate(schedule_all(s.units, 1), key_tiles, 132, 2.0),
               split = simulate(s, key_tiles, 132, 2.0);
  EXPECT_LT(split, whole - 0.6 * double(key_tiles + 2));  // about two thirds of a round saved
}

TEST(FlashSchedule, NeverWorseThanRunningEveryUnitWhole) {
  for (int sms : {78, 114, 132})
    for (int64_t units : {int64_t(1), int64_t(7), int64_t(500), int64_t(3072), int64_t(10240), int64_t(23640)})
      for (int64_t tiles : {int64_t(3), int64_t(24), int64_t(187), int64_t(430)}) {
        const Schedule s = plan_schedule(units, tiles, sms);
        EXPECT_EQ(s.units, units);
        EXPECT_GE(s.whole, 0);
        EXPECT_LE(s.whole, units);
        EXPECT_GE(s.parts, 1);
        if (s.split_units() > 0) {
          EXPECT_GE(tiles / s.parts, 16) << "pieces too short to pay for their prologue";
          EXPECT_EQ(s.whole % sms, 0) << "whole units fill whole rounds";
        }
        EXPECT_LE(simulate(s, tiles, sms, 2.0), simulate(schedule_all(units, 1), tiles, sms, 2.0) + 1e-9)
            << units << " units, " << tiles << " key tiles, " << sms << " SMs";
      }
}

TEST(FlashSchedule, FullRoundsAndShortRowsAreLeftWhole) {
  EXPECT_EQ(plan_schedule(4 * 132, 187, 132).split_units(), 0);  // no partly full round
  EXPECT_EQ(plan_schedule(36, 20, 132).split_units(), 0);        // 20 key tiles: pieces would be too short
  EXPECT_EQ(schedule_all(100, 3).whole, 0);
  EXPECT_EQ(schedule_all(100, 3).ctas(), 300);
  EXPECT_EQ(schedule_all(100, 1).ctas(), 100);
}

TEST(FlashSchedule, PairsCoverEveryQueryTileOfOneHead) {
  // 32 760 rows are 256 query tiles (even); 75 600 are 591 (odd: padded to 592); 300 are 3 (padded to 4).
  for (int64_t Lq : {int64_t(1), int64_t(300), int64_t(32760), int64_t(75600)})
    for (int64_t H : {int64_t(1), int64_t(12), int64_t(40)}) {
      const int64_t tiles = (Lq + kQueryTile - 1) / kQueryTile;
      const Schedule single = schedule_attention(Lq, Lq, H, kQueryTile, kKeyTile, 132, 0, false);
      EXPECT_EQ(single.qtiles, tiles);
      EXPECT_EQ(single.cluster, 1);
      const Schedule s = schedule_attention(Lq, Lq, H, kQueryTile, kKeyTile, 132, 0, true);
      EXPECT_EQ(s.qtiles, tiles + tiles % 2);
      EXPECT_EQ(s.units, s.qtiles * H);
      EXPECT_EQ(s.slots, 132);
      // Pairs are units 2i and 2i + 1: with an even tile count per head both belong to one head.
      EXPECT_EQ(s.qtiles % 2, 0);
      if (s.cluster == 2) {
        EXPECT_EQ(s.whole % 2, 0);
      }
      EXPECT_TRUE(s.cluster == 2 || s.whole % 2 == 1) << "pairs are dropped only for an odd count of whole units";
    }
  // Checks that split every unit leave no whole units, so the pairs cost nothing there.
  const Schedule forced = schedule_attention(300, 700, 2, kQueryTile, kKeyTile, 132, 3, true);
  EXPECT_EQ(forced.whole, 0);
  EXPECT_EQ(forced.ctas(), 4 * 2 * 3);
}

TEST(FlashSchedule, PersistentPairsRunEqualUnitCounts) {
  // Every whole unit is run once; a cluster's two CTAs run equally many units, and units 2i, 2i + 1
  // (one head's consecutive query tiles) run on one cluster. 130 and 114: fewer resident pairs, as
  // when other work shares the GPU.
  for (int slots : {132, 130, 114})
    for (int64_t Lq : {int64_t(300), int64_t(2900), int64_t(32760), int64_t(75600)})
      for (int64_t H : {int64_t(1), int64_t(12), int64_t(40)}) {
        const Schedule s = schedule_attention(Lq, Lq, H, kQueryTile, kKeyTile, slots, 0, true);
        const int64_t grid = s.persistent_ctas();
        ASSERT_GE(grid, s.whole > 0 ? 1 : 0);
        ASSERT_LE(grid, s.whole);
        if (s.whole == 0) continue;
        ASSERT_EQ(grid % s.cluster, 0);
        std::vector<int64_t> runs(static_cast<size_t>(grid), 0);
        for (int64_t u = 0; u < s.whole; ++u) ++runs[static_cast<size_t>(u % grid)];
        if (s.cluster != 2) continue;
        for (int64_t b = 0; b + 1 < grid; b += 2) {
          ASSERT_EQ(runs[static_cast<size_t>(b)], runs[static_cast<size_t>(b + 1)]) << "CTA " << b;
        }
        for (int64_t i = 0; 2 * i + 1 < s.whole; ++i) {
          ASSERT_EQ((2 * i) % grid / 2, (2 * i + 1) % grid / 2);
        }
      }
}
