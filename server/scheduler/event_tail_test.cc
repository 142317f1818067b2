#include "server/scheduler/event_tail.h"

#include <gtest/gtest.h>

namespace attune::scheduler {
namespace {

using store::EventType;
using store::JobEvent;
using store::JobState;

JobEvent Event(const std::string& job, int64_t sequence, EventType type = EventType::kMetrics,
               JobState state = JobState::kRunning) {
  JobEvent e;
  e.job_id = job;
  e.sequence = sequence;
  e.type = type;
  e.state = state;
  e.step = sequence;
  return e;
}

std::vector<JobEvent> Range(const std::string& job, int64_t first, int64_t last) {
  std::vector<JobEvent> events;
  for (int64_t s = first; s <= last; ++s) events.push_back(Event(job, s));
  return events;
}

std::vector<int64_t> Sequences(const std::optional<std::vector<JobEvent>>& events) {
  std::vector<int64_t> out;
  for (const JobEvent& e : *events) out.push_back(e.sequence);
  return out;
}

TEST(EventTailTest, AnswersOnlyWhatItHoldsContiguously) {
  EventTail tail;
  EXPECT_FALSE(tail.After("a", 0, 10).has_value());
  tail.Add(Range("a", 5, 7));
  tail.Add(Range("a", 8, 9));
  EXPECT_FALSE(tail.After("a", 3, 10).has_value());  // 4 is not held
  EXPECT_EQ(Sequences(tail.After("a", 4, 10)), (std::vector<int64_t>{5, 6, 7, 8, 9}));
  EXPECT_EQ(Sequences(tail.After("a", 6, 2)), (std::vector<int64_t>{7, 8}));
  EXPECT_TRUE(tail.After("a", 9, 10)->empty());  // nothing newer yet
  EXPECT_FALSE(tail.After("b", 0, 10).has_value());
}

// max_events <= 0 means "no limit", as the scheduler and the store document it (the metrics
// exporter reads a job's whole tail that way).
TEST(EventTailTest, ZeroOrNegativeMaxEventsMeansNoLimit) {
  EventTail tail;
  tail.Add(Range("a", 1, 5));
  EXPECT_EQ(Sequences(tail.After("a", 2, 0)), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(Sequences(tail.After("a", 0, -1)), (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

// Batches written by two threads can be remembered out of order; the tail must never claim to
// hold a range with a hole in it.
TEST(EventTailTest, OutOfOrderBatchesNeverLeaveAHole) {
  EventTail tail;
  tail.Add(Range("a", 1, 3));
  tail.Add(Range("a", 6, 6));  // 4..5 not remembered yet
  EXPECT_FALSE(tail.After("a", 3, 10).has_value());
  EXPECT_EQ(Sequences(tail.After("a", 5, 10)), (std::vector<int64_t>{6}));
  tail.Add(Range("a", 4, 5));  // late and older: ignored
  EXPECT_FALSE(tail.After("a", 3, 10).has_value());
  EXPECT_EQ(Sequences(tail.After("a", 5, 10)), (std::vector<int64_t>{6}));
  tail.Add(Range("a", 7, 8));
  EXPECT_EQ(Sequences(tail.After("a", 5, 10)), (std::vector<int64_t>{6, 7, 8}));
}

TEST(EventTailTest, TerminalStateDropsTheJobAndLimitsHold) {
  EventTail tail(/*max_events_per_job=*/4, /*max_jobs=*/2);
  tail.Add(Range("a", 1, 10));
  EXPECT_FALSE(tail.After("a", 5, 10).has_value());  // only 7..10 kept
  EXPECT_EQ(Sequences(tail.After("a", 6, 10)), (std::vector<int64_t>{7, 8, 9, 10}));
  tail.Add({Event("a", 11, EventType::kStateChanged, JobState::kSucceeded)});
  EXPECT_FALSE(tail.After("a", 10, 10).has_value());

  tail.Add(Range("b", 1, 1));
  tail.Add(Range("c", 1, 1));
  tail.Add(Range("d", 1, 1));  // a third job: every tail dropped, then d kept
  EXPECT_FALSE(tail.After("b", 0, 10).has_value());
  EXPECT_EQ(Sequences(tail.After("d", 0, 10)), (std::vector<int64_t>{1}));
}

}  // namespace
}  // namespace attune::scheduler
