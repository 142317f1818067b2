// Evaluation on a validation set: the loss, and accuracy, F1 (two classes) and Matthews
// correlation (classification; stats.h), Pearson and Spearman
// (regression) or perplexity (causal LM). Internal to the engine (LibTorch).
#ifndef ATTUNE_SERVER_ENGINE_EVALUATE_H_
#define ATTUNE_SERVER_ENGINE_EVALUATE_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/job_spec.h"
#include "server/engine/data.h"
#include "server/engine/model.h"
#include "server/engine/trainer.h"

namespace attune::engine {

// Evaluates on `examples`. When `predictions` is not null it receives one value per example, in
// order: the predicted class id (classification), the predicted value (regression); nothing for
// causal LM.
EvalMetrics Evaluate(Model& model, const std::vector<Example>& examples, const TrainSpec& spec,
                     int32_t pad_id, torch::Device device, int64_t step,
                     std::vector<double>* predictions_out);

// Writes Evaluate's `predictions` as <output_dir>/eval_predictions.jsonl, one JSON object per
// validation example in file order: {"index", "prediction"} plus, for classification, the
// "label" name from `label_names`. Lets people (and the PEFT cross-check) compare outputs. Does
// nothing for no predictions; INTERNAL naming the path when the file cannot be written.
absl::Status WritePredictions(const std::string& output_dir, const std::vector<double>& predictions,
                              Task task, const std::vector<std::string>& label_names);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_EVALUATE_H_
