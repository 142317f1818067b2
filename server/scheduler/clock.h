// The time the scheduler stamps on jobs and events: a seam so that tests can fix the clock.
//
// `RealClock()` reads the system clock. Tests use `FakeClock`, which stands still until told to
// move. Thread safety: both are thread-safe.
#ifndef ATTUNE_SERVER_SCHEDULER_CLOCK_H_
#define ATTUNE_SERVER_SCHEDULER_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace attune::scheduler {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time in microseconds.
  virtual int64_t NowUs() = 0;
};

// The system clock; a process-wide object that is never destroyed.
Clock* RealClock();

// A clock that reads what it was set to.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now_us) : now_us_(now_us) {}
  int64_t NowUs() override { return now_us_.load(); }
  void Advance(int64_t us) { now_us_ += us; }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_CLOCK_H_
