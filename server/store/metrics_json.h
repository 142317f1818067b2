// How typed metrics are kept in the store's JSON columns: the store's one conversion of
// StepMetrics and EvalMetrics (common/metrics.h).
//
// Internal to the store. Each is a flat JSON object of numbers with stable names, so that rows
// written by earlier versions (which stored the same names in a map) still read:
//   step: train_loss, epoch, grad_norm, tokens_per_second, samples_per_second, tokens, samples,
//         skipped (0/1), total_steps, lr.<group>, device_allocated_bytes,
//         device_reserved_bytes, device_peak_allocated_bytes
//   eval: eval_step, eval_loss, eval_accuracy, eval_f1, eval_mcc, eval_pearson, eval_spearman,
//   eval_perplexity,
//         eval_examples
// A non-finite number (a skipped step's NaN loss) is stored as null and read back as NaN.
// Thread-safe (pure functions).
#ifndef ATTUNE_SERVER_STORE_METRICS_JSON_H_
#define ATTUNE_SERVER_STORE_METRICS_JSON_H_

#include <optional>

#include "common/metrics.h"
#include "nlohmann/json.hpp"

namespace attune::store {

// Adds `step`'s fields (not its step number) to `out`, an object.
void AddStepJson(const StepMetrics& step, nlohmann::json* out);
// The step's metrics when `in` has a train_loss; nullopt otherwise. `step` sets the step number.
std::optional<StepMetrics> StepFromJson(const nlohmann::json& in, int64_t step);

// Adds `eval`'s fields, its step as eval_step, to `out`, an object.
void AddEvalJson(const EvalMetrics& eval, nlohmann::json* out);
// The evaluation when `in` has an eval_loss; nullopt otherwise. Without eval_step (rows from
// earlier versions) the step is `fallback_step`.
std::optional<EvalMetrics> EvalFromJson(const nlohmann::json& in, int64_t fallback_step);

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_METRICS_JSON_H_
