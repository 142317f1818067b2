#include "server/engine/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/remove_tree.h"

namespace attune::engine {
namespace {

using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/attune_safetensors_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { RemoveTree(dir_); }

  // Writes a file from a raw JSON header and `data_bytes` bytes of data.
  std::string WriteRaw(const std::string& name, const std::string& header, size_t data_bytes,
                       uint64_t header_len_override = 0) {
    std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary);
    uint64_t n = header_len_override ? header_len_override : header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << header << std::string(data_bytes, '\0');
    return path;
  }

  std::string dir_;
};

TEST_F(SafetensorsTest, RoundTripKeepsDtypesShapesBytesAndMetadata) {
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -8.5f};
  std::vector<int64_t> b = {42, -7};
  std::vector<uint16_t> c = {0x3f80, 0xc000, 0x4040};  // bf16 1, -2, 3
  std::string path = dir_ + "/rt.safetensors";
  ASSERT_TRUE(WriteSafetensors(path,
                               {{"layer.a", DType::kF32, {2, 3}, a.data(), a.size() * 4},
                                {"b", DType::kI64, {2}, b.data(), b.size() * 8},
                                {"c", DType::kBF16, {3}, c.data(), c.size() * 2},
                                {"empty", DType::kF16, {0, 4}, nullptr, 0}},
                               {{"format", "pt"}})
                  .ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Names(), (std::vector<std::string>{"b", "c", "empty", "layer.a"}));
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  const TensorView* va = (*file)->Find("layer.a");
  ASSERT_NE(va, nullptr);
  EXPECT_EQ(va->dtype, DType::kF32);
  EXPECT_EQ(va->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(va->NumElements(), 6);
  ASSERT_EQ(va->byte_size, 24u);
  std::vector<float> read(6);
  std::memcpy(read.data(), va->data, 24);
  EXPECT_EQ(read, a);
  const TensorView* vb = (*file)->Find("b");
  ASSERT_NE(vb, nullptr);
  int64_t b1;
  std::memcpy(&b1, vb->data + 8, 8);
  EXPECT_EQ(b1, -7);
  EXPECT_EQ((*file)->Find("c")->dtype, DType::kBF16);
  EXPECT_EQ((*file)->Find("empty")->byte_size, 0u);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
  // The header is padded to 8 bytes, so the data section starts aligned.
  EXPECT_EQ((reinterpret_cast<uintptr_t>(vb->data) - reinterpret_cast<uintptr_t>(va->data)), 24u);
}

TEST_F(SafetensorsTest, WriterRejectsSizeMismatchAndDuplicates) {
  float x[2] = {1, 2};
  auto bad = SerializeSafetensors({{"x", DType::kF32, {3}, x, 8}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("needs 12"));
  auto dup = SerializeSafetensors({{"x", DType::kF32, {2}, x, 8}, {"x", DType::kF32, {2}, x, 8}});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("duplicate tensor 'x'"));
}

TEST_F(SafetensorsTest, OffsetsOutsideDataSectionAreInvalid) {
  auto path =
      WriteRaw("o.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 16);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("tensor 'w'"));
  EXPECT_THAT(file.status().message(), HasSubstr("outside the data section of 16 bytes"));
}

TEST_F(SafetensorsTest, OverlappingTensorsAreInvalid) {
  auto path = WriteRaw("ov.safetensors",
                       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       12);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("'a' [0, 8) and 'b' [4, 12) overlap"));
}

TEST_F(SafetensorsTest, UnknownDtypeIsInvalid) {
  auto path =
      WriteRaw("d.safetensors", R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("unknown dtype 'F8_E4M3'; expected one of F32"));
}

TEST_F(SafetensorsTest, ShapeThatDoesNotMatchTheBytesIsInvalid) {
  auto path =
      WriteRaw("s.safetensors", R"({"a":{"dtype":"F16","shape":[3,2],"data_offsets":[0,8]}})", 8);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(),
              HasSubstr("shape [3, 2] of F16 needs 12 bytes but data_offsets span 8"));
}

TEST_F(SafetensorsTest, TruncatedFilesAreInvalid) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  // Header length says more than the file has.
  auto path = WriteRaw("t1.safetensors", header, 0, header.size() + 100);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  // The length (the file's first 8 bytes) is not quoted: the file may be anything.
  EXPECT_EQ(file.status().message(),
            "safetensors '" + path + "': truncated: the header length is larger than the file");
  // Data section cut short.
  path = WriteRaw("t2.safetensors", header, 2);
  file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("outside the data section of 2 bytes"));
  // Shorter than the length prefix.
  std::ofstream(dir_ + "/t3.safetensors") << "abc";
  file = SafetensorsFile::Open(dir_ + "/t3.safetensors");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("truncated: 3 bytes"));
}

TEST_F(SafetensorsTest, HugeHeaderLengthAndBadJsonAreInvalid) {
  auto path = WriteRaw("h.safetensors", "{}", 0, uint64_t{1} << 40);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.status().message(),
            "safetensors '" + path + "': header length is larger than the limit of 100 MiB");
  path = WriteRaw("j.safetensors", "{not json", 0);
  file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("not a JSON object"));
}

TEST_F(SafetensorsTest, MissingFileIsInvalidAndNamesThePath) {
  auto file = SafetensorsFile::Open(dir_ + "/nope.safetensors");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("nope.safetensors"));
}

TEST_F(SafetensorsTest, ShardedModelFindsTensorsAcrossShards) {
  float a[2] = {1, 2};
  float b[3] = {3, 4, 5};
  ASSERT_TRUE(WriteSafetensors(dir_ + "/model-00001-of-00002.safetensors",
                               {{"x.weight", DType::kF32, {2}, a, 8}})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(dir_ + "/model-00002-of-00002.safetensors",
                               {{"y.weight", DType::kF32, {3}, b, 12}})
                  .ok());
  std::ofstream(dir_ + "/model.safetensors.index.json")
      << R"({"metadata":{"total_size":20},"weight_map":{)"
      << R"("x.weight":"model-00001-of-00002.safetensors",)"
      << R"("y.weight":"model-00002-of-00002.safetensors"}})";
  auto model = SafetensorsModel::Open(dir_);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->Names(), (std::vector<std::string>{"x.weight", "y.weight"}));
  ASSERT_NE((*model)->Find("y.weight"), nullptr);
  float y2;
  std::memcpy(&y2, (*model)->Find("y.weight")->data + 8, 4);
  EXPECT_EQ(y2, 5.0f);
  EXPECT_GT((*model)->total_bytes(), 20);

  std::ofstream(dir_ + "/model.safetensors.index.json")
      << R"({"weight_map":{"z.weight":"model-00001-of-00002.safetensors"}})";
  auto bad = SafetensorsModel::Open(dir_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("tensor 'z.weight' is not in shard"));
}

TEST_F(SafetensorsTest, ModelDirectoryWithoutWeightsIsInvalid) {
  auto model = SafetensorsModel::Open(dir_);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("neither model.safetensors"));
}

TEST_F(SafetensorsTest, MetadataMustHoldOnlyStrings) {
  auto path = WriteRaw("m.safetensors", R"({"__metadata__":{"format":"pt","n":1}})", 0);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.status().message(),
            "safetensors '" + path + "': '__metadata__' value 'n' is not a string");
}

TEST_F(SafetensorsTest, IndexMustNameShardsInsideTheModelDirectory) {
  std::ofstream(dir_ + "/model.safetensors.index.json")
      << R"({"weight_map":{"x.weight":"../elsewhere.safetensors"}})";
  auto model = SafetensorsModel::Open(dir_);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model.status().message(),
            "'" + dir_ +
                "/model.safetensors.index.json': shard '../elsewhere.safetensors' must "
                "be a file name in the model directory");
}

}  // namespace
}  // namespace attune::engine
