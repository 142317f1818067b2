#include "server/scheduler/clock.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace attune::scheduler {
namespace {

class SystemClock : public Clock {
 public:
  int64_t NowUs() override { return absl::ToUnixMicros(absl::Now()); }
};

}  // namespace

Clock* RealClock() {
  static Clock* clock = new SystemClock();
  return clock;
}

}  // namespace attune::scheduler
