#include <gtest/gtest.h>

#include "trainer/metrics.h"
#include "trainer/tensorboard_writer.h"

namespace pajama {
namespace {

std::string hex(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "%02x ", c);
    out += buf;
  }
  if (!out.empty()) out.pop_back();
  return out;
}

TEST(TensorBoard, Crc32cTestVector) { EXPECT_EQ(crc32c("123456789"), 0xE3069283u); }

// Golden bytes from ../shared/FORMATS.md section 6.3, checked there against
// protoc-generated classes of TensorBoard's own protos.
TEST(TensorBoard, ScalarEventMatchesGoldenBytes) {
  const std::string event = scalar_event(1700000001.5, 10, "train/loss", 2.5f);
  EXPECT_EQ(hex(event),
            "09 00 00 60 40 fc 54 d9 41 10 0a 2a 13 0a 11 0a 0a 74 72 61 69 6e 2f 6c 6f 73 73 15 00 00 20 40");
  const std::string rec = tfrecord(event);
  EXPECT_EQ(hex(rec.substr(0, 12)), "20 00 00 00 00 00 00 00 29 ed a9 50");
  EXPECT_EQ(hex(rec.substr(rec.size() - 4)), "7f 61 54 4f");
  EXPECT_EQ(rec.size(), 12u + 32u + 4u);
}

TEST(Metrics, KnownPeakFlopsByGpuName) {
  EXPECT_EQ(known_peak_flops("NVIDIA H100 80GB HBM3"), 989e12);
  EXPECT_EQ(known_peak_flops("NVIDIA H200"), 989e12);
  EXPECT_EQ(known_peak_flops("NVIDIA H100 PCIe"), 756e12);
  EXPECT_EQ(known_peak_flops("NVIDIA A100-SXM4-80GB"), 312e12);
  EXPECT_EQ(known_peak_flops("NVIDIA GeForce RTX 3090"), 0);
  EXPECT_EQ(known_peak_flops("cpu"), 0);
}

}  // namespace
}  // namespace pajama
