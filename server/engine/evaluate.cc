#include "server/engine/evaluate.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/engine/batches.h"
#include "server/engine/stats.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

constexpr int kEvalBatchSize = 64;

// One evaluation batch's examples: their indices in the order of the batch's rows (packed:
// in the order of its example slots), and for a packed batch its rows.
struct EvalChunk {
  std::vector<int64_t> indices;
  PackedStep rows;
};

// The validation set in batches: kEvalBatchSize examples at a time, or packed steps of the
// training's rows per step.
std::vector<EvalChunk> EvalChunks(const std::vector<Example>& examples, const TrainSpec& spec) {
  std::vector<EvalChunk> chunks;
  if (!spec.packing) {
    for (auto& indices : SequentialBatches(static_cast<int64_t>(examples.size()), kEvalBatchSize)) {
      chunks.push_back({std::move(indices), {}});
    }
    return chunks;
  }
  for (PackedStep& step : SequentialSteps(examples, spec.max_seq_len, PackedRowsPerStep(spec))) {
    EvalChunk chunk;
    for (const PackedRow& row : step)
      chunk.indices.insert(chunk.indices.end(), row.begin(), row.end());
    chunk.rows = std::move(step);
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

// The batch of `chunk`; a packed batch reserves exactly its examples' slots.
Batch MakeEvalBatch(const std::vector<Example>& examples, const EvalChunk& chunk,
                    const TrainSpec& spec, int32_t pad_id, torch::Device device) {
  if (!spec.packing) return MakeBatch(examples, chunk.indices, spec.task, pad_id, device);
  BatchShape shape;
  shape.rows = static_cast<int64_t>(chunk.rows.size());
  shape.length = spec.max_seq_len;
  shape.masked = true;
  shape.example_slots = static_cast<int64_t>(chunk.indices.size());
  return MakePackedBatch(examples, chunk.rows, shape, spec.task, pad_id, device);
}

}  // namespace

EvalMetrics Evaluate(Model& model, const std::vector<Example>& examples, const TrainSpec& spec,
                     int32_t pad_id, torch::Device device, int64_t step,
                     std::vector<double>* predictions_out) {
  torch::NoGradGuard no_grad;
  AutocastGuard autocast(device);
  model.SetTraining(false);
  EvalMetrics metrics;
  metrics.step = step;
  metrics.examples = static_cast<int64_t>(examples.size());
  double loss_sum = 0;
  int64_t loss_count = 0;
  int64_t num_classes = 0;
  std::vector<int64_t> predicted_classes, true_classes;
  std::vector<double> predictions, targets;
  std::vector<double> by_index(examples.size());  // predictions in file order
  for (const EvalChunk& chunk : EvalChunks(examples, spec)) {
    const std::vector<int64_t>& indices = chunk.indices;
    Batch batch = MakeEvalBatch(examples, chunk, spec, pad_id, device);
    torch::Tensor logits =
        model.Forward(batch.input_ids, batch.attention_mask, batch.packing).to(torch::kFloat32);
    if (spec.task == Task::kCausalLm) {
      auto labels = batch.labels.slice(1, 1).reshape({-1});
      auto l = logits.slice(1, 0, logits.size(1) - 1).reshape({-1, logits.size(-1)});
      auto sum = torch::nn::functional::cross_entropy(
          l, labels,
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(
              torch::kSum));
      loss_sum += sum.item<double>();
      loss_count += labels.ne(-100).sum().item<int64_t>();
    } else if (spec.task == Task::kRegression) {
      auto pred = logits.squeeze(-1).to(torch::kCPU);
      auto target = batch.labels.to(torch::kCPU);
      loss_sum += torch::mse_loss(pred, target, at::Reduction::Sum).item<double>();
      loss_count += batch.size;
      auto pred_a = pred.accessor<float, 1>();
      auto target_a = target.accessor<float, 1>();
      for (int64_t i = 0; i < batch.size; ++i) {
        predictions.push_back(pred_a[i]);
        targets.push_back(target_a[i]);
        by_index[indices[i]] = pred_a[i];
      }
    } else {
      loss_sum += torch::nn::functional::cross_entropy(
                      logits, batch.labels,
                      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                      .item<double>();
      loss_count += batch.size;
      num_classes = logits.size(-1);
      // One copy per batch, then host reads (no device sync per example).
      torch::Tensor predicted = logits.argmax(-1).to(torch::kCPU);
      torch::Tensor labels = batch.labels.to(torch::kCPU);
      auto predicted_a = predicted.accessor<int64_t, 1>();
      auto labels_a = labels.accessor<int64_t, 1>();
      for (int64_t i = 0; i < batch.size; ++i) {
        predicted_classes.push_back(predicted_a[i]);
        true_classes.push_back(labels_a[i]);
        by_index[indices[i]] = static_cast<double>(predicted_a[i]);
      }
    }
  }
  model.SetTraining(true);
  if (predictions_out != nullptr && spec.task != Task::kCausalLm) *predictions_out = by_index;
  metrics.loss = loss_count > 0 ? loss_sum / static_cast<double>(loss_count) : 0.0;
  switch (spec.task) {
    case Task::kCausalLm:
      metrics.perplexity = std::exp(metrics.loss);
      break;
    case Task::kRegression:
      metrics.pearson = Pearson(predictions, targets);
      metrics.spearman = Spearman(predictions, targets);
      break;
    default: {
      const ClassificationScores scores =
          ScoreClassification(predicted_classes, true_classes, num_classes);
      metrics.accuracy = scores.accuracy;
      metrics.f1 = scores.f1;
      metrics.mcc = scores.mcc;
    }
  }
  return metrics;
}

absl::Status WritePredictions(const std::string& output_dir, const std::vector<double>& predictions,
                              Task task, const std::vector<std::string>& label_names) {
  if (predictions.empty()) return absl::OkStatus();
  const std::string path = (fs::path(output_dir) / "eval_predictions.jsonl").string();
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  std::ofstream out(path, std::ios::trunc);
  for (size_t i = 0; i < predictions.size(); ++i) {
    nlohmann::json line = {{"index", i}};
    if (task == Task::kRegression) {
      line["prediction"] = predictions[i];
    } else {
      const auto id = static_cast<int64_t>(predictions[i]);
      line["prediction"] = id;
      if (id >= 0 && id < static_cast<int64_t>(label_names.size())) line["label"] = label_names[id];
    }
    out << line.dump() << "\n";
  }
  if (!out) return absl::InternalError(absl::StrCat("training: cannot write ", path));
  return absl::OkStatus();
}

}  // namespace attune::engine
