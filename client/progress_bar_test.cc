#include "client/progress_bar.h"

#include <sstream>

#include "gtest/gtest.h"

namespace attune::client {
namespace {

TEST(ProgressBarRenderTest, ZeroHalfAndFull) {
  EXPECT_EQ(ProgressBar::Render(0, 10, 10, "0/10"), "[..........]   0% 0/10");
  EXPECT_EQ(ProgressBar::Render(5, 10, 10, "5/10 loss 0.5000 ETA 1:05"),
            "[#####.....]  50% 5/10 loss 0.5000 ETA 1:05");
  EXPECT_EQ(ProgressBar::Render(10, 10, 10, ""), "[##########] 100%");
}

TEST(ProgressBarRenderTest, RoundsDownAndClamps) {
  // 999 of 1000 is not yet a full bar nor 100%.
  EXPECT_EQ(ProgressBar::Render(999, 1000, 4, ""), "[###.]  99%");
  EXPECT_EQ(ProgressBar::Render(12, 10, 4, ""), "[####] 100%");
  EXPECT_EQ(ProgressBar::Render(-3, 10, 4, ""), "[....]   0%");
}

TEST(ProgressBarRenderTest, UnknownTotal) {
  EXPECT_EQ(ProgressBar::Render(7, 0, 4, "7 B"), "[....]   ?% 7 B");
  EXPECT_EQ(ProgressBar::Render(0, -1, 4, ""), "[....]   ?%");
}

TEST(ProgressBarTest, TerminalRedrawsInPlaceAndPadsShorterLines) {
  std::ostringstream out;
  ProgressBar bar(&out, BarOutput::kTerminal, 4);
  bar.Update(1, 4, "1/4 long detail");
  bar.Update(2, 4, "2/4");
  bar.Finish();
  EXPECT_EQ(out.str(),
            "\r[#...]  25% 1/4 long detail"
            "\r[##..]  50% 2/4            "
            "\n");
}

TEST(ProgressBarTest, FinishWithoutBarWritesNothingAndBarRestarts) {
  std::ostringstream out;
  ProgressBar bar(&out, BarOutput::kTerminal, 2);
  bar.Finish();
  EXPECT_EQ(out.str(), "");
  bar.Update(2, 2, "");
  bar.Finish();
  bar.Finish();
  bar.Update(0, 2, "");
  EXPECT_EQ(out.str(), "\r[##] 100%\n\r[..]   0%");
}

TEST(ProgressBarTest, NotATerminalWritesNothing) {
  std::ostringstream out;
  ProgressBar bar(&out, BarOutput::kPlain, 10);
  bar.Update(5, 10, "5/10");
  bar.Update(10, 10, "10/10");
  bar.Finish();
  EXPECT_EQ(out.str(), "");
}

TEST(DurationTextTest, MinutesAndHours) {
  EXPECT_EQ(DurationText(0), "0:00");
  EXPECT_EQ(DurationText(65), "1:05");
  EXPECT_EQ(DurationText(3723.4), "1:02:03");
}

}  // namespace
}  // namespace attune::client
