// JobAssignment (wire) -> quarry::QuantizeOptions (core): every job-level field lands where the
// pipeline reads it, defaults stay core's, and bad values name the field.
#include "job_options.h"

#include <gtest/gtest.h>

#include "convert/config_convert.h"
#include "quarry/presets.h"

namespace quarry::worker {
namespace {

namespace v1 = ::quarry::v1;

v1::JobAssignment Assignment() {
  v1::JobAssignment a;
  a.set_job_id("j1");
  a.set_attempt(1);
  auto config = PresetConfig("int4_wo_128");
  EXPECT_TRUE(config.ok());
  *a.mutable_config() = convert::ToProto(*config);
  return a;
}

TEST(JobOptions, MapsEveryJobLevelField) {
  v1::JobAssignment a = Assignment();
  v1::JobSpec* s = a.mutable_spec();
  s->mutable_calibration()->set_format(v1::DATA_FORMAT_TEXT);
  s->mutable_calibration()->set_num_samples(7);
  s->mutable_calibration()->set_seq_len(33);
  s->mutable_calibration()->set_seed(9);
  s->mutable_eval()->set_seq_len(64);
  s->mutable_eval()->set_max_windows(3);
  s->mutable_eval()->set_skip_float_baseline(true);
  s->mutable_export_options()->set_weight_format(v1::WEIGHT_FORMAT_FAKE_QUANTIZED);
  s->mutable_export_options()->set_pack_method(v1::PACK_METHOD_ORDER);
  s->mutable_export_options()->set_max_shard_bytes(1 << 20);
  s->mutable_export_options()->set_skip_report(true);
  s->mutable_export_options()->set_export_format(v1::EXPORT_FORMAT_AWQ);
  LocalInputs in{"/m", "/c.txt", "/e.txt"};
  std::vector<std::string> warnings;
  auto o = BuildQuantizeOptions(a, in, "/out", "cuda:1", 4, &warnings);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->model_dir, "/m");
  EXPECT_EQ(o->config, *PresetConfig("int4_wo_128"));
  EXPECT_EQ(o->calibration.path, "/c.txt");
  EXPECT_EQ(o->calibration.format, CalibrationOptions::Format::kText);
  EXPECT_EQ(o->calibration.num_samples, 7);
  EXPECT_EQ(o->calibration.seq_len, 33);
  EXPECT_EQ(o->calibration.seed, 9u);
  ASSERT_TRUE(o->eval.has_value());
  EXPECT_EQ(o->eval->path, "/e.txt");
  EXPECT_EQ(o->eval->seq_len, 64);
  EXPECT_EQ(o->eval->max_windows, 3);
  EXPECT_FALSE(o->eval->float_baseline);
  EXPECT_FALSE(o->export_options.real_quantized);
  EXPECT_FALSE(o->export_options.pack_reorder);
  EXPECT_EQ(o->export_options.max_shard_bytes, 1u << 20);
  EXPECT_FALSE(o->export_options.write_report);
  EXPECT_EQ(o->export_options.format, ExportFormat::kAwq);
  EXPECT_EQ(o->output_dir, "/out");
  EXPECT_EQ(o->device, "cuda:1");
  EXPECT_EQ(o->threads, 4);
  EXPECT_TRUE(warnings.empty());
}

TEST(JobOptions, UnsetFieldsKeepCoresDefaults) {
  auto o = BuildQuantizeOptions(Assignment(), LocalInputs{"/m", "", ""}, "/out", "cpu", 0,
                                nullptr);
  ASSERT_TRUE(o.ok()) << o.status();
  const QuantizeOptions defaults;
  EXPECT_EQ(o->calibration.num_samples, defaults.calibration.num_samples);
  EXPECT_EQ(o->calibration.seq_len, defaults.calibration.seq_len);
  EXPECT_EQ(o->calibration.seed, defaults.calibration.seed);
  EXPECT_FALSE(o->eval.has_value());
  EXPECT_TRUE(o->export_options.real_quantized);
  EXPECT_TRUE(o->export_options.pack_reorder);
  EXPECT_TRUE(o->export_options.write_report);
  EXPECT_EQ(o->export_options.format, ExportFormat::kQuark);
}

TEST(JobOptions, BadValuesNameTheField) {
  v1::JobAssignment a = Assignment();
  a.mutable_spec()->mutable_calibration()->set_num_samples(0);
  auto o = BuildQuantizeOptions(a, LocalInputs{"/m", "", ""}, "/out", "cpu", 0, nullptr);
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(o.status().message().find("calibration.num_samples"), std::string::npos);
  v1::JobAssignment no_config;
  EXPECT_FALSE(BuildQuantizeOptions(no_config, LocalInputs{"/m", "", ""}, "/o", "cpu", 0, nullptr)
                   .ok());
  v1::JobAssignment dtype = Assignment();
  dtype.mutable_spec()->mutable_export_options()->set_output_dtype("bfloat16");
  std::vector<std::string> warnings;
  ASSERT_TRUE(BuildQuantizeOptions(dtype, LocalInputs{"/m", "", ""}, "/o", "cpu", 0, &warnings)
                  .ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("output_dtype"), std::string::npos);
}

}  // namespace
}  // namespace quarry::worker
