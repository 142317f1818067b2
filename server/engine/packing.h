// Sample packing: examples laid end to end in rows of a fixed length, and rows grouped into
// fixed-shape steps. Plain C++ (no LibTorch); batches.h turns a step into tensors.
//
// What "packing" means here, for users of TRL / axolotl / torchtune's "sample packing":
//   - A row holds whole examples, `row_length` (the job's max_seq_len) tokens at most; an
//     example never spans two rows and never attends to another example in its row (varlen
//     attention, attention.h), and its positions restart at 0.
//   - A step is `rows_per_step` rows. Without a token budget (tokens_per_step 0) that is as
//     many rows as hold batch_size examples on average (TrainingRowsPerStep), so a step sees
//     about the examples it would see unpacked and the learning rates tuned for batch_size
//     carry over; with one, tokens_per_step / max_seq_len rows. Every step has the same shape,
//     so CUDA graphs replay it; the last step of an epoch is padded with empty rows.
//   - Rows are filled once per run (best fit in a seeded shuffle of the examples: the fullest
//     row that still has room takes the next example), and each epoch shuffles the rows with
//     (seed, epoch) before cutting them into steps. So the same seed gives the same packing and
//     the same steps, on any machine, and a resumed run sees the steps it would have seen.
//     Which examples share a row does not change any example's loss or gradient.
#ifndef ATTUNE_SERVER_ENGINE_PACKING_H_
#define ATTUNE_SERVER_ENGINE_PACKING_H_

#include <cstdint>
#include <vector>

#include "server/engine/data.h"

namespace attune::engine {

// One row: the indices of its examples, in the order they are laid out.
using PackedRow = std::vector<int64_t>;

// One step: at most rows_per_step rows (fewer only in an epoch's last step).
using PackedStep = std::vector<PackedRow>;

// Fills rows of `row_length` tokens with the examples, visited in `order`, best fit: each
// example goes into the open row with the least room that still fits it, or a new row. Every
// example must be at most row_length tokens (data.h truncates to max_seq_len).
std::vector<PackedRow> PackRows(const std::vector<Example>& examples,
                                const std::vector<int64_t>& order, int64_t row_length);

// The rows of a training run: PackRows over a shuffle of all examples seeded with `seed`.
std::vector<PackedRow> TrainingRows(const std::vector<Example>& examples, int64_t row_length,
                                    uint64_t seed);

// Epoch `epoch`'s steps: the rows shuffled with (seed, epoch), cut into steps of rows_per_step.
std::vector<PackedStep> EpochSteps(const std::vector<PackedRow>& rows, int64_t rows_per_step,
                                   uint64_t seed, int64_t epoch);

// Evaluation's steps: the examples packed in file order, rows kept in order.
std::vector<PackedStep> SequentialSteps(const std::vector<Example>& examples, int64_t row_length,
                                        int64_t rows_per_step);

// Rows per training step. A token budget (tokens_per_step > 0) gives tokens_per_step /
// row_length rows. Without one: batch_size x rows / examples rounded to the nearest whole row
// (at least 1, at most batch_size), the rows that hold batch_size examples on average. Packing
// then changes how a step's examples are laid out, not how many there are, so the defaults'
// learning rate and step count stay those of batch_size examples per step.
int64_t TrainingRowsPerStep(int64_t tokens_per_step, int64_t batch_size, int64_t row_length,
                            int64_t rows, int64_t examples);

// Steps per epoch: ceil(rows / rows_per_step).
int64_t StepsPerEpoch(int64_t rows, int64_t rows_per_step);

// The most examples any step made of rows_per_step of `rows` can hold, whatever the grouping:
// the sum of the rows_per_step largest per-row counts. Batches reserve this many example slots
// so that every step has the same shape.
int64_t MaxExamplesPerStep(const std::vector<PackedRow>& rows, int64_t rows_per_step);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_PACKING_H_
