// attuned's flags for how jobs run (server/worker/job_runners.h): the worker binary, remote
// workers, shared-base groups, one-rank collectives.
#ifndef ATTUNE_SERVER_RUNNER_FLAGS_H_
#define ATTUNE_SERVER_RUNNER_FLAGS_H_

#include "CLI/CLI.hpp"
#include "server/worker/job_runners.h"

namespace attune {

// Adds the flags to `app`; they write into *runner, which must outlive the parse.
void AddRunnerFlags(CLI::App& app, worker::JobRunnerOptions* runner);

}  // namespace attune

#endif  // ATTUNE_SERVER_RUNNER_FLAGS_H_
