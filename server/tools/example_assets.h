// The example fine-tuning assets: a tiny, learnable task that needs no download.
//
//   OUT/model/config.json         a RoBERTa-style RobertaForSequenceClassification (random init)
//   OUT/model/model.safetensors   its weights, fp32, Hugging Face key names
//   OUT/model/tokenizer.json      a byte-level BPE tokenizer trained on the example corpus
//   OUT/train.jsonl, OUT/validation.jsonl   {"text": ..., "label": "positive" | "negative"}
//
// The task is the sentiment of short template sentences; a LoRA adapter on q,v plus the head
// learns it in a few hundred steps. Deterministic: the same build writes the same bytes.
#ifndef ATTUNE_SERVER_TOOLS_EXAMPLE_ASSETS_H_
#define ATTUNE_SERVER_TOOLS_EXAMPLE_ASSETS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace attune {

struct ExampleSummary {
  int64_t vocab_size = 0;
  int64_t train_examples = 0;
  int64_t validation_examples = 0;
};

// Writes the assets under `out_dir` (created if missing). `summary` may be null.
// INTERNAL when a file cannot be written.
absl::Status WriteExampleAssets(const std::string& out_dir, ExampleSummary* summary);

}  // namespace attune

#endif  // ATTUNE_SERVER_TOOLS_EXAMPLE_ASSETS_H_
