// `attune-render --model DIR --data FILE [--record N]`: what the model will see for one
// conversation record, before any GPU time is spent. Renders the record with the model's chat
// template exactly as a job does (server/engine/chat/: Debian's python3-jinja2, transformers'
// sandbox), tokenizes it with the model's tokenizer.json, and prints the text with the trained
// spans between ⟦ and ⟧, then the ids with a * on each trained one. Runs locally; no server.
#ifndef ATTUNE_SERVER_TOOLS_RENDER_COMMAND_H_
#define ATTUNE_SERVER_TOOLS_RENDER_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace attune::tools {

struct RenderFlags {
  std::string model;             // model directory: tokenizer.json, tokenizer_config.json
  std::string data;              // JSONL file of {"messages": [...]} records
  int record = 1;                // which record, 1-based, counting non-blank lines
  bool train_on_inputs = false;  // as the job's spec field
};

// Adds the flags to `cmd`; `flags` must outlive its parsing.
void AddRenderFlags(CLI::App* cmd, RenderFlags* flags);

// The report for the record. INVALID_ARGUMENT naming the file, line and field for a bad record
// (as CreateJob would), or when the template raises on it; the tokenizer's and template's errors.
absl::StatusOr<std::string> RenderReport(const RenderFlags& flags);

}  // namespace attune::tools

#endif  // ATTUNE_SERVER_TOOLS_RENDER_COMMAND_H_
