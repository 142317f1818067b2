// `attune submit`: its flags (one per JobSpec field) and the CreateJobRequest they make.
//
// A flag that is not given leaves its field unset, so that the --config file's value, or else
// the server's default, applies (for `--gpus`: one GPU when the server has any, else a CPU
// slot). Pure functions of the parsed command line; thread-compatible.
#ifndef ATTUNE_CLIENT_SUBMIT_COMMAND_H_
#define ATTUNE_CLIENT_SUBMIT_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"

namespace attune::client {

// The flags of `attune submit`, one per JobSpec field.
struct SubmitFlags {
  std::string config, model, train, validation, task, targets, method, schedule, name, request_id,
      packing, eval_metric;
  std::vector<std::string> lr_ratios, labels;
  int rank = 0, epochs = 0, batch_size = 0, max_seq_len = 0, keep_checkpoints = 0, gpus = 0,
      ranks = 0, priority = 0, early_stopping_patience = 0, max_retries = 0;
  double alpha = 0, dropout = 0, lr = 0, loraplus_ratio = 0, weight_decay = 0, max_grad_norm = 0;
  bool rslora = false;
  bool train_on_inputs = false;
  int64_t max_steps = 0, warmup_steps = 0, eval_every = 0, checkpoint_every = 0,
          tokens_per_step = 0;
  uint64_t seed = 0;
};

// Adds the flags to `cmd`, filling `flags` when the command line is parsed. `flags` is not owned
// and must outlive `cmd`'s parsing.
void AddSubmitFlags(CLI::App* cmd, SubmitFlags* flags);

// The request for the parsed `cmd`: the --config file (if any) with the flags given on top,
// relative paths made absolute against the current directory. INVALID_ARGUMENT naming the
// field for an unknown enum name or a malformed ratio or label; the config file's errors.
absl::StatusOr<v1::CreateJobRequest> BuildCreateRequest(const CLI::App& cmd,
                                                        const SubmitFlags& flags);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_SUBMIT_COMMAND_H_
