// The wire format round-trips: a Config with every kind of spec survives serialisation, and
// presence ("None") is preserved for optional fields.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "quarry/v1/config.pb.h"
#include "quarry/v1/jobs.pb.h"

namespace {

using google::protobuf::util::MessageDifferencer;

quarry::v1::Config MakeConfig() {
  quarry::v1::Config c;
  auto* w = c.mutable_global_quant_config()->mutable_weight()->add_specs();
  w->mutable_int4_per_group()->set_group_size(128);
  w->mutable_int4_per_group()->set_is_dynamic(false);
  auto* in = c.mutable_global_quant_config()->mutable_input_tensors()->add_specs();
  auto* qs = in->mutable_quantization_spec();
  qs->set_dtype(quarry::v1::DTYPE_FP8_E4M3);
  qs->set_qscheme(quarry::v1::QSCHEME_PER_TENSOR);
  qs->set_observer_cls("PerTensorMinMaxObserver");
  qs->set_is_dynamic(false);
  auto* layer = c.add_layer_quant_config();
  layer->set_name("*.down_proj");
  layer->mutable_config()->mutable_weight()->add_specs()->mutable_ocp_mxfp4();
  c.add_exclude("lm_head");
  c.add_algo_config()->mutable_gptq()->set_block_size(64);
  c.set_min_kv_scale(1e-4f);
  return c;
}

TEST(ProtoRoundTrip, ConfigSurvivesSerialization) {
  quarry::v1::Config c = MakeConfig();
  std::string bytes;
  ASSERT_TRUE(c.SerializeToString(&bytes));
  quarry::v1::Config back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(c, back));
  EXPECT_EQ(back.global_quant_config().weight().specs(0).int4_per_group().group_size(), 128);
  EXPECT_EQ(back.layer_quant_config(0).name(), "*.down_proj");
}

TEST(ProtoRoundTrip, OptionalFieldsKeepPresence) {
  quarry::v1::QuantizationSpec s;
  s.set_dtype(quarry::v1::DTYPE_INT8);
  s.set_symmetric(false);  // explicitly False, not None
  std::string bytes;
  ASSERT_TRUE(s.SerializeToString(&bytes));
  quarry::v1::QuantizationSpec back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_TRUE(back.has_symmetric());
  EXPECT_FALSE(back.symmetric());
  EXPECT_FALSE(back.has_ch_axis());  // None stays None
  EXPECT_FALSE(back.has_zero_point_type());
}

TEST(ProtoRoundTrip, JobSpecWithConfigAndLabels) {
  quarry::v1::SubmitJobRequest req;
  auto* spec = req.mutable_spec();
  spec->mutable_model()->set_path("/models/llama");
  spec->mutable_calibration()->set_path("calib.jsonl");
  spec->mutable_calibration()->set_num_samples(64);
  *spec->mutable_config() = MakeConfig();
  (*spec->mutable_labels())["team"] = "mlops";
  spec->set_priority(5);
  std::string bytes;
  ASSERT_TRUE(req.SerializeToString(&bytes));
  quarry::v1::SubmitJobRequest back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(req, back));
  EXPECT_EQ(back.spec().config_source_case(), quarry::v1::JobSpec::kConfig);
}

}  // namespace
