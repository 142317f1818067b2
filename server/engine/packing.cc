#include "server/engine/packing.h"

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <utility>

namespace attune::engine {
namespace {

// Fisher-Yates with our own index draw (as data.cc), so the order does not depend on the
// standard library's distributions.
template <typename T>
void Shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(v[i], v[j]);
  }
}

}  // namespace

std::vector<PackedRow> PackRows(const std::vector<Example>& examples,
                                const std::vector<int64_t>& order, int64_t row_length) {
  std::vector<PackedRow> rows;
  // Open rows by room left; among equal room, the older row first (deterministic).
  std::multimap<int64_t, size_t> by_room;
  for (int64_t index : order) {
    const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(examples[index].ids.size()));
    auto it = by_room.lower_bound(n);
    size_t row;
    int64_t room;
    if (it == by_room.end()) {
      row = rows.size();
      rows.emplace_back();
      room = row_length;
    } else {
      row = it->second;
      room = it->first;
      by_room.erase(it);
    }
    rows[row].push_back(index);
    room -= n;
    if (room > 0) by_room.emplace(room, row);
  }
  return rows;
}

std::vector<PackedRow> TrainingRows(const std::vector<Example>& examples, int64_t row_length,
                                    uint64_t seed) {
  std::vector<int64_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(seed * 1000003ULL + 0x9e3779b97f4a7c15ULL);
  Shuffle(order, rng);
  return PackRows(examples, order, row_length);
}

std::vector<PackedStep> EpochSteps(const std::vector<PackedRow>& rows, int64_t rows_per_step,
                                   uint64_t seed, int64_t epoch) {
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  Shuffle(order, rng);
  std::vector<PackedStep> steps;
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(rows_per_step)) {
    PackedStep step;
    const size_t end = std::min(order.size(), start + static_cast<size_t>(rows_per_step));
    for (size_t i = start; i < end; ++i) step.push_back(rows[order[i]]);
    steps.push_back(std::move(step));
  }
  return steps;
}

std::vector<PackedStep> SequentialSteps(const std::vector<Example>& examples, int64_t row_length,
                                        int64_t rows_per_step) {
  std::vector<int64_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::vector<PackedRow> rows = PackRows(examples, order, row_length);
  std::vector<PackedStep> steps;
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(rows_per_step)) {
    const size_t end = std::min(rows.size(), start + static_cast<size_t>(rows_per_step));
    steps.emplace_back(rows.begin() + start, rows.begin() + end);
  }
  return steps;
}

int64_t TrainingRowsPerStep(int64_t tokens_per_step, int64_t batch_size, int64_t row_length,
                            int64_t rows, int64_t examples) {
  if (tokens_per_step > 0) return std::max<int64_t>(1, tokens_per_step / row_length);
  if (examples <= 0) return 1;
  // Nearest whole row to batch_size x rows / examples, in integers.
  const int64_t nearest = (2 * batch_size * rows + examples) / (2 * examples);
  return std::clamp<int64_t>(nearest, 1, std::max<int64_t>(1, batch_size));
}

int64_t StepsPerEpoch(int64_t rows, int64_t rows_per_step) {
  return (rows + rows_per_step - 1) / rows_per_step;
}

int64_t MaxExamplesPerStep(const std::vector<PackedRow>& rows, int64_t rows_per_step) {
  std::vector<int64_t> counts;
  counts.reserve(rows.size());
  for (const PackedRow& row : rows) counts.push_back(static_cast<int64_t>(row.size()));
  const size_t k = std::min(counts.size(), static_cast<size_t>(rows_per_step));
  std::partial_sort(counts.begin(), counts.begin() + k, counts.end(), std::greater<int64_t>());
  int64_t total = 0;
  for (size_t i = 0; i < k; ++i) total += counts[i];
  return std::max<int64_t>(total, 1);
}

}  // namespace attune::engine
