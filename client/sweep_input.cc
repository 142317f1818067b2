#include "client/sweep_input.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/job_spec_input.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/sweep_table.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "yaml-cpp/yaml.h"

namespace attune::client {
namespace {

namespace fs = std::filesystem;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// The one spelling of a field that has several ("lr" and "learning_rate", "rank", "lora_rank"
// and "lora.rank"), as a path of keys.
std::vector<std::string> CanonicalPath(const std::string& field) {
  if (field == "lr") return {"learning_rate"};
  for (const char* key : {"rank", "alpha", "dropout", "use_rslora"}) {
    if (field == key || field == absl::StrCat("lora_", key)) return {"lora", key};
  }
  return absl::StrSplit(field, '.');
}

// Removes `path` from `node` (recursively, since assigning a yaml-cpp handle rebinds its node).
void ErasePath(YAML::Node node, const std::vector<std::string>& path, size_t i) {
  if (!node.IsMap()) return;
  if (i + 1 == path.size()) {
    node.remove(path[i]);
    return;
  }
  ErasePath(node[path[i]], path, i + 1);
}

// Sets `path` in `node` to a copy of `value`, making the mappings on the way.
void SetPath(YAML::Node node, const std::vector<std::string>& path, size_t i,
             const YAML::Node& value) {
  if (i + 1 == path.size()) {
    node[path[i]] = YAML::Clone(value);
    return;
  }
  if (!node[path[i]].IsMap()) node[path[i]] = YAML::Node(YAML::NodeType::Map);
  SetPath(node[path[i]], path, i + 1, value);
}

// Sets the grid field `field` of `doc` to `value`, removing its other spellings so that the grid
// value wins.
void SetField(YAML::Node doc, const std::string& field, const YAML::Node& value) {
  const std::vector<std::string> path = CanonicalPath(field);
  if (path.size() == 2 && path[0] == "lora") {
    doc.remove(path[1]);
    doc.remove(absl::StrCat("lora_", path[1]));
  }
  if (path.size() == 1 && path[0] == "learning_rate") doc.remove("lr");
  ErasePath(doc, path, 0);
  SetPath(doc, path, 0, value);
}

// A copy of `doc` with the grid field `field` set to `value`.
YAML::Node WithValue(const YAML::Node& doc, const std::string& field, const YAML::Node& value) {
  YAML::Node out = YAML::Clone(doc);
  SetField(out, field, value);
  return out;
}

// A grid value as its label shows it (see the header).
std::string ValueText(const YAML::Node& value) {
  if (value.IsScalar()) return value.Scalar();
  std::vector<std::string> parts;
  if (value.IsSequence()) {
    for (const YAML::Node& item : value) parts.push_back(ValueText(item));
  } else if (value.IsMap()) {
    for (const auto& item : value) {
      parts.push_back(absl::StrCat(item.first.Scalar(), "=", ValueText(item.second)));
    }
  }
  return absl::StrJoin(parts, ",");
}

struct GridField {
  std::string name;
  std::vector<YAML::Node> values;
};

// The grid's fields, each value checked against the rest of the file on its own.
absl::StatusOr<std::vector<GridField>> ReadGrid(const YAML::Node& grid, const YAML::Node& base,
                                                const std::string& base_dir,
                                                const std::string& path) {
  if (!grid.IsMap() || grid.size() == 0) {
    return Invalid(
        absl::StrCat("grid: ", path, " needs `grid:`, a mapping from a field to a list of values"));
  }
  std::vector<GridField> fields;
  int64_t jobs = 1;
  for (const auto& item : grid) {
    GridField field{item.first.Scalar(), {}};
    const std::string where = absl::StrCat("grid.", field.name);
    if (field.name == "name" || field.name == "labels" || field.name == "grid") {
      return Invalid(absl::StrCat(where, ": cannot be varied (the sweep sets names and labels)"));
    }
    if (!item.second.IsSequence() || item.second.size() == 0) {
      return Invalid(absl::StrCat(where, ": expected a non-empty list of values"));
    }
    for (const YAML::Node& value : item.second) {
      absl::StatusOr<v1::JobSpec> spec =
          JobSpecFromYamlText(YAML::Dump(WithValue(base, field.name, value)), base_dir, path);
      if (!spec.ok()) {
        return Invalid(
            absl::StrCat(where, ": value '", ValueText(value), "': ", spec.status().message()));
      }
      field.values.push_back(value);
    }
    jobs *= static_cast<int64_t>(field.values.size());
    if (jobs > kMaxSweepJobs) {
      return Invalid(absl::StrCat("grid: more than ", kMaxSweepJobs, " jobs; at most ",
                                  kMaxSweepJobs, " allowed in one sweep"));
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

// "s-" and 16 hex digits of the SHA-256 of the jobs' specs (deterministically serialised).
absl::StatusOr<std::string> DerivedSweepId(const std::vector<SweepJob>& jobs) {
  Sha256 digest;
  for (const SweepJob& job : jobs) {
    std::string bytes;
    {
      google::protobuf::io::StringOutputStream stream(&bytes);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      job.request.spec().SerializeToCodedStream(&coded);
    }
    const std::string size = absl::StrCat(bytes.size(), ":");
    digest.Update(size.data(), size.size());
    digest.Update(bytes.data(), bytes.size());
  }
  ASSIGN_OR_RETURN(std::string hex, digest.HexDigest());
  return absl::StrCat("s-", hex.substr(0, 16));
}

// Sets the sweep's labels, name and idempotency key on job `index`.
void MarkJob(const std::string& sweep_id, size_t index, SweepJob* job) {
  v1::JobSpec* spec = job->request.mutable_spec();
  auto& labels = *spec->mutable_labels();
  labels[kSweepLabel] = sweep_id;
  labels[kSweepIndexLabel] = absl::StrCat(index);
  for (const auto& [field, value] : job->grid_values) {
    labels[absl::StrCat(kGridLabelPrefix, field)] = value;
  }
  const std::string values = GridValuesText(job->grid_values);
  spec->set_name(spec->name().empty() ? values : absl::StrCat(spec->name(), " ", values));
  job->request.set_request_id(absl::StrCat(sweep_id, "-", index));
}

}  // namespace

std::string GridValuesText(const std::vector<std::pair<std::string, std::string>>& values) {
  return absl::StrJoin(values, " ", absl::PairFormatter("="));
}

absl::StatusOr<SweepPlan> SweepPlanFromYamlFile(const std::string& path,
                                                const std::string& sweep_id) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("config: cannot read ", path));
  } catch (const YAML::Exception& e) {
    return Invalid(absl::StrCat("config: ", path, ": ", e.what()));
  }
  if (!root.IsMap()) return Invalid(absl::StrCat("config: ", path, ": expected a mapping"));
  const std::string base_dir = fs::absolute(fs::path(path)).parent_path().string();
  YAML::Node base = YAML::Clone(root);
  base.remove("grid");
  ASSIGN_OR_RETURN(std::vector<GridField> fields, ReadGrid(root["grid"], base, base_dir, path));

  SweepPlan plan;
  std::vector<size_t> at(fields.size(), 0);  // the current value of each field: an odometer
  while (true) {
    YAML::Node doc = YAML::Clone(base);
    SweepJob job;
    for (size_t f = 0; f < fields.size(); ++f) {
      const YAML::Node& value = fields[f].values[at[f]];
      SetField(doc, fields[f].name, value);
      job.grid_values.emplace_back(fields[f].name, ValueText(value));
    }
    ASSIGN_OR_RETURN(
        *job.request.mutable_spec(),
        JobSpecFromYamlText(YAML::Dump(doc), base_dir,
                            absl::StrCat(path, " (", GridValuesText(job.grid_values), ")")));
    plan.jobs.push_back(std::move(job));
    size_t f = fields.size();
    while (f > 0 && ++at[f - 1] == fields[f - 1].values.size()) at[--f] = 0;
    if (f == 0) break;
  }
  plan.sweep_id = sweep_id;
  if (plan.sweep_id.empty()) {
    ASSIGN_OR_RETURN(plan.sweep_id, DerivedSweepId(plan.jobs));
  }
  for (size_t i = 0; i < plan.jobs.size(); ++i) MarkJob(plan.sweep_id, i, &plan.jobs[i]);
  return plan;
}

}  // namespace attune::client
