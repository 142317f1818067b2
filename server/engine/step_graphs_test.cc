// StepGraphs::Plan, the rule for which steps are captured as CUDA graphs. The capture and replay
// themselves need a GPU: tests/gpu/run_checks.sh runs them (the example job with and without
// graphs, and bench/run_h200.sh's RoBERTa runs).
#include "server/engine/step_graphs.h"

#include <gtest/gtest.h>

namespace attune::engine {
namespace {

using Action = StepGraphs::Action;

TEST(StepGraphsPlanTest, WarmsUpTimesTheFirstShapeThenCaptures) {
  const int64_t many = 1000;
  for (int seen = 1; seen < StepGraphs::kWarmupSteps; ++seen) {
    EXPECT_EQ(StepGraphs::Plan(seen, many, false), Action::kEager) << seen;
  }
  EXPECT_EQ(StepGraphs::Plan(StepGraphs::kWarmupSteps, many, false), Action::kTimeEagerStep);
  EXPECT_EQ(StepGraphs::Plan(StepGraphs::kWarmupSteps + 1, many, false), Action::kCapture);
}

TEST(StepGraphsPlanTest, LaterShapesAreNotTimedAgain) {
  EXPECT_EQ(StepGraphs::Plan(StepGraphs::kWarmupSteps, 1000, true), Action::kEager);
  EXPECT_EQ(StepGraphs::Plan(StepGraphs::kWarmupSteps + 1, 1000, true), Action::kCapture);
}

// A shape with fewer than kMinReplays steps to go (this one included) never pays for a capture.
TEST(StepGraphsPlanTest, RareShapesStayEager) {
  const int after = StepGraphs::kWarmupSteps + 1;
  EXPECT_EQ(StepGraphs::Plan(after, StepGraphs::kMinReplays - 1, true), Action::kCapture);
  EXPECT_EQ(StepGraphs::Plan(after, StepGraphs::kMinReplays - 2, true), Action::kEager);
  EXPECT_EQ(StepGraphs::Plan(StepGraphs::kWarmupSteps, StepGraphs::kMinReplays - 2, false),
            Action::kEager);
  EXPECT_EQ(StepGraphs::Plan(after, 0, false), Action::kEager);
}

}  // namespace
}  // namespace attune::engine
