// attune-worker --share-base: one worker process training a shared-base group
// (engine/training_group.h) of attempts for attuned (attuned --share-base with job processes).
//
// It opens the stream of its first attempt (--attempt) and, for every attempt attuned later
// sends it (SupervisorCommand.attach, on any of its open streams), a stream of its own; each
// attempt's job joins the group at its next step, reports its progress and end on its own stream
// as a one-job worker does, and leaves the group when its job ends or attuned stops it. When the
// group has ended with attempts still on their way, a new group takes them. The worker exits when
// no attempt is left or on its way (an attach that arrives after that is ignored: attuned then
// gives the attempt a worker of its own).
#ifndef ATTUNE_SERVER_WORKER_GROUP_WORKER_H_
#define ATTUNE_SERVER_WORKER_GROUP_WORKER_H_

#include <string>

namespace attune::worker {

// Trains the group at attuned's worker `address` from `first_attempt` on. Returns the exit code:
// 0 when every attempt's end was reported, 3 when attuned was lost before one's was, 2 when the
// first attempt got no job.
int RunGroupWorker(const std::string& address, const std::string& first_attempt);

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_GROUP_WORKER_H_
