#include "server/api/request_limits.h"

#include <string>

#include "gtest/gtest.h"

namespace attune::api {
namespace {

TEST(AbbreviateTest, KeepsShortTextAndCutsLongText) {
  EXPECT_EQ(Abbreviate("short"), "short");
  EXPECT_EQ(Abbreviate(std::string(200, 'x')), std::string(200, 'x'));
  EXPECT_EQ(Abbreviate(std::string(201, 'x')), std::string(200, 'x') + "...");
  EXPECT_EQ(Abbreviate("abcdef", 3), "abc...");
}

TEST(CheckCreateJobRequestSizesTest, AcceptsTheLimitsThemselves) {
  v1::CreateJobRequest request;
  request.set_request_id(std::string(kMaxRequestIdLength, 'r'));
  request.mutable_spec()->set_name(std::string(kMaxNameLength, 'n'));
  request.mutable_spec()->set_model(std::string(kMaxPathLength, 'm'));
  for (size_t i = 0; i < kMaxLabels; ++i) {
    (*request.mutable_spec()->mutable_labels())[std::to_string(i)] =
        std::string(kMaxLabelValueLength, 'v');
  }
  EXPECT_TRUE(CheckCreateJobRequestSizes(request).ok());
}

TEST(CheckCreateJobRequestSizesTest, NamesTheFieldAndTheLimit) {
  struct Case {
    void (*set)(v1::CreateJobRequest*);
    std::string message;
  };
  const Case cases[] = {
      {[](v1::CreateJobRequest* r) { r->set_request_id(std::string(129, 'r')); },
       "request_id: 129 characters; at most 128 allowed"},
      {[](v1::CreateJobRequest* r) { r->mutable_spec()->set_name(std::string(1025, 'n')); },
       "name: 1025 characters; at most 1024 allowed"},
      {[](v1::CreateJobRequest* r) { r->mutable_spec()->set_train(std::string(4097, 't')); },
       "train: 4097 characters; at most 4096 allowed"},
      {[](v1::CreateJobRequest* r) { r->mutable_spec()->set_validation(std::string(5000, 'v')); },
       "validation: 5000 characters; at most 4096 allowed"},
      {[](v1::CreateJobRequest* r) {
         (*r->mutable_spec()->mutable_labels())[std::string(300, 'k')] = "v";
       },
       "labels: key '" + std::string(200, 'k') + "...' has 300 characters; at most 128 allowed"},
      {[](v1::CreateJobRequest* r) {
         for (int i = 0; i < 17; ++i) r->mutable_spec()->add_targets("q");
       },
       "targets: 17 entries; at most 16 allowed"},
      {[](v1::CreateJobRequest* r) { r->mutable_spec()->add_targets(std::string(33, 'x')); },
       "targets: projection '" + std::string(33, 'x') + "' has 33 characters; at most 32 allowed"},
      {[](v1::CreateJobRequest* r) {
         for (int i = 0; i < 17; ++i)
           (*r->mutable_spec()->mutable_lr_ratios())[std::to_string(i)] = 1;
       },
       "lr_ratios: 17 entries; at most 16 allowed"},
  };
  for (const Case& c : cases) {
    v1::CreateJobRequest request;
    c.set(&request);
    absl::Status status = CheckCreateJobRequestSizes(request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(CheckJobIdTest, RequiredAndBounded) {
  EXPECT_TRUE(CheckJobId("j-0123456789abcdef").ok());
  EXPECT_EQ(CheckJobId("").message(), "job_id: required");
  EXPECT_EQ(CheckJobId(std::string(65, 'j')).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckJobId(std::string(65, 'j')).message(),
            "job_id: 65 characters; at most 64 allowed");
  EXPECT_EQ(CheckPageToken(std::string(33, '1')).message(),
            "page_token: 33 characters; at most 32 allowed");
}

TEST(ParseLabelSelectorTest, SplitsAtTheFirstEqualsSign) {
  google::protobuf::RepeatedPtrField<std::string> selector;
  *selector.Add() = "attune.sweep=s-1";
  *selector.Add() = "attune.grid.lr_ratios=v=4";
  *selector.Add() = "empty=";
  auto pairs = ParseLabelSelector(selector);
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  EXPECT_EQ(*pairs, (std::vector<std::pair<std::string, std::string>>{
                        {"attune.sweep", "s-1"}, {"attune.grid.lr_ratios", "v=4"}, {"empty", ""}}));
}

TEST(ParseLabelSelectorTest, RefusesEntriesThatAreNotKeyValue) {
  google::protobuf::RepeatedPtrField<std::string> selector;
  *selector.Add() = "attune.sweep";
  EXPECT_EQ(ParseLabelSelector(selector).status(),
            absl::InvalidArgumentError("label_selector: 'attune.sweep' is not key=value"));
  selector.Clear();
  *selector.Add() = "=s-1";
  EXPECT_EQ(ParseLabelSelector(selector).status(),
            absl::InvalidArgumentError("label_selector: '=s-1' is not key=value"));
  selector.Clear();
  for (int i = 0; i < 17; ++i) *selector.Add() = "k=v";
  EXPECT_EQ(ParseLabelSelector(selector).status(),
            absl::InvalidArgumentError("label_selector: 17 entries; at most 16 allowed"));
}

}  // namespace
}  // namespace attune::api
