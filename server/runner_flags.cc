#include "server/runner_flags.h"

namespace attune {

void AddRunnerFlags(CLI::App& app, worker::JobRunnerOptions* runner) {
  app.add_option("--worker-binary", runner->worker_binary,
                 "the attune-worker executable (default: beside attuned)");
  app.add_option("--worker-listen", runner->worker_listen,
                 "HOST:PORT (IPv4) where attune-workers on other machines join jobs (port 0 = "
                 "any); their slots are the remote-cpu entries of --devices");
  app.add_option("--worker-token-file", runner->worker_token_file,
                 "the token remote workers must send (the file's first line)");
  app.add_flag("--share-base{on}", runner->share_base,
               "compatible LoRA jobs that would wait for a slot share a busy one and one copy of "
               "its frozen base, trained together: --share-base[=on] on every slot, =gpus (the "
               "default) on GPU slots, =off never")
      ->check(CLI::IsMember({"on", "gpus", "off"}));
  app.add_flag("--one-rank-collectives", runner->one_rank_collectives,
               "a job of one rank forms its one-member process group too (Gloo on the CPU, NCCL "
               "on CUDA), as a job of several does: checks that path on one device");
}

}  // namespace attune
