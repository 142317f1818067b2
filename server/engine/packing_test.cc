// Packing (packing.h, MakePackedBatch, PackedAttention): rows hold whole examples, steps are
// deterministic, and a packed batch gives every model the losses and gradients of its examples
// run one by one (fp32, CPU: the reference varlen attention).
#include "server/engine/packing.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "server/engine/batches.h"
#include "server/engine/model.h"
#include "server/engine/packed_attention.h"

namespace attune::engine {
namespace {

std::vector<Example> ExamplesOfLengths(const std::vector<int>& lengths, int64_t vocab,
                                       uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Example> examples;
  for (size_t i = 0; i < lengths.size(); ++i) {
    Example e;
    for (int t = 0; t < lengths[i]; ++t) {
      e.ids.push_back(static_cast<int32_t>(5 + rng() % static_cast<uint64_t>(vocab - 5)));
      e.loss_mask.push_back(t >= 1 && rng() % 4 != 0 ? 1 : 0);  // some tokens without loss
    }
    e.label = static_cast<int64_t>(i % 2);
    e.target = 0.25f * static_cast<float>(i % 5);
    examples.push_back(std::move(e));
  }
  return examples;
}

std::vector<int64_t> Iota(size_t n) {
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(i);
  return v;
}

TEST(PackRowsTest, EveryExampleOnceAndNoRowOverflows) {
  std::vector<int> lengths;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) lengths.push_back(1 + static_cast<int>(rng() % 64));
  const std::vector<Example> examples = ExamplesOfLengths(lengths, 100, 1);
  const std::vector<PackedRow> rows = TrainingRows(examples, 64, 7);
  std::multiset<int64_t> seen;
  int64_t tokens = 0;
  for (const PackedRow& row : rows) {
    int64_t used = 0;
    for (int64_t i : row) used += lengths[i];
    EXPECT_LE(used, 64);
    tokens += used;
    seen.insert(row.begin(), row.end());
  }
  const std::vector<int64_t> all = Iota(500);
  EXPECT_EQ(seen, std::multiset<int64_t>(all.begin(), all.end()));
  // Best fit fills rows well: the rows hold at least 95% of their room.
  EXPECT_GE(static_cast<double>(tokens) / (64.0 * static_cast<double>(rows.size())), 0.95);
}

TEST(PackRowsTest, BestFitTakesTheFullestRowThatHasRoom) {
  // Rows of 10: 6 -> row0 (room 4), 7 -> row1 (room 3), 3 -> row1 (the fullest with room),
  // 4 -> row0, 2 -> new row2.
  const std::vector<Example> examples = ExamplesOfLengths({6, 7, 3, 4, 2}, 100, 1);
  const std::vector<PackedRow> rows = PackRows(examples, Iota(5), 10);
  EXPECT_EQ(rows, (std::vector<PackedRow>{{0, 3}, {1, 2}, {4}}));
}

TEST(EpochStepsTest, SameSeedSameStepsAndEpochsDiffer) {
  const std::vector<Example> examples = ExamplesOfLengths(std::vector<int>(300, 5), 50, 2);
  const std::vector<PackedRow> rows = TrainingRows(examples, 16, 11);
  EXPECT_EQ(rows, TrainingRows(examples, 16, 11));
  EXPECT_NE(rows, TrainingRows(examples, 16, 12));
  const auto epoch0 = EpochSteps(rows, 4, 11, 0);
  EXPECT_EQ(epoch0, EpochSteps(rows, 4, 11, 0));
  EXPECT_NE(epoch0, EpochSteps(rows, 4, 11, 1));
  EXPECT_EQ(static_cast<int64_t>(epoch0.size()),
            StepsPerEpoch(static_cast<int64_t>(rows.size()), 4));
}

TEST(TrainingRowsPerStepTest, DefaultHoldsBatchSizeExamplesOnAverage) {
  // 300 examples of 5 tokens in rows of 16: 3 per row, 100 rows. 16 examples are 5.33 rows -> 5.
  const std::vector<Example> examples = ExamplesOfLengths(std::vector<int>(300, 5), 50, 2);
  const std::vector<PackedRow> rows = TrainingRows(examples, 16, 11);
  ASSERT_EQ(rows.size(), 100u);
  EXPECT_EQ(TrainingRowsPerStep(0, 16, 16, 100, 300), 5);
  EXPECT_EQ(TrainingRowsPerStep(0, 17, 16, 100, 300), 6);  // 5.67 rounds up
  EXPECT_EQ(TrainingRowsPerStep(0, 1, 16, 100, 300), 1);   // never 0 rows
  EXPECT_EQ(TrainingRowsPerStep(0, 4, 16, 300, 300), 4);   // one example a row: batch_size rows
  // A token budget wins: whole rows of it.
  EXPECT_EQ(TrainingRowsPerStep(100, 16, 16, 100, 300), 6);
  EXPECT_EQ(TrainingRowsPerStep(16, 16, 16, 100, 300), 1);
}

TEST(EpochStepsTest, MaxExamplesPerStepBoundsEveryEpochsSteps) {
  std::vector<int> lengths;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 400; ++i) lengths.push_back(1 + static_cast<int>(rng() % 30));
  const std::vector<Example> examples = ExamplesOfLengths(lengths, 100, 1);
  const std::vector<PackedRow> rows = TrainingRows(examples, 32, 1);
  const int64_t bound = MaxExamplesPerStep(rows, 3);
  int64_t most = 0;
  for (int64_t epoch = 0; epoch < 20; ++epoch) {
    for (const PackedStep& step : EpochSteps(rows, 3, 1, epoch)) {
      int64_t n = 0;
      for (const PackedRow& row : step) n += static_cast<int64_t>(row.size());
      most = std::max(most, n);
    }
  }
  EXPECT_LE(most, bound);
  // And the bound is tight: the three fullest rows in one step reach it.
  std::vector<int64_t> counts;
  for (const PackedRow& row : rows) counts.push_back(static_cast<int64_t>(row.size()));
  std::sort(counts.rbegin(), counts.rend());
  EXPECT_EQ(bound, counts[0] + counts[1] + counts[2]);
}

TEST(MakePackedBatchTest, LayoutPositionsSegmentsAndCausalLabels) {
  std::vector<Example> examples = ExamplesOfLengths({3, 2, 4}, 100, 9);
  for (Example& e : examples) std::fill(e.loss_mask.begin(), e.loss_mask.end(), 1);
  BatchShape shape{3, 6, true, 4};  // one empty row and one unused example slot
  Batch b =
      MakePackedBatch(examples, PackedStep{{0, 1}, {2}}, shape, Task::kCausalLm, 1, torch::kCPU);
  EXPECT_EQ(b.size, 3);
  EXPECT_EQ(b.tokens, 9);
  auto positions = b.packing.positions;
  EXPECT_TRUE(torch::equal(positions[0], torch::tensor({0, 1, 2, 0, 1, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(positions[1], torch::tensor({0, 1, 2, 3, 0, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.packing.segments[0], torch::tensor({0, 0, 0, 1, 1, 2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.packing.segments[1], torch::tensor({0, 0, 0, 0, 1, 1}, torch::kLong)));
  // Segments: row0 [0,3) [3,5) pad [5,6); row1 [6,10) pad [10,12); row2 pad [12,18); then empty.
  EXPECT_TRUE(
      torch::equal(b.packing.cu_seqlens, torch::tensor({0, 3, 5, 6, 10, 12, 18, 18}, torch::kInt)));
  EXPECT_TRUE(torch::equal(b.packing.first, torch::tensor({0, 3, 6, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.packing.last, torch::tensor({2, 4, 9, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.example_weights, torch::tensor({1.f, 1.f, 1.f, 0.f})));
  // No loss on each example's first token, nor on padding.
  const int64_t e1_second = examples[1].ids[1];
  EXPECT_EQ(b.labels[0][3].item<int64_t>(), -100);
  EXPECT_EQ(b.labels[0][4].item<int64_t>(), e1_second);
  EXPECT_EQ(b.labels[0][5].item<int64_t>(), -100);
  EXPECT_EQ(b.labels[1][0].item<int64_t>(), -100);
  EXPECT_EQ(b.labels[2].ne(-100).sum().item<int64_t>(), 0);
}

}  // namespace
}  // namespace attune::engine
