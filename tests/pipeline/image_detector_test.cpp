// The ImageDetector's own (non-virtual) steps, on a detector that only counts: submit() leaves nothing
// added behind when an image is refused, and abandon() empties the detector even when collecting fails.
#include <gtest/gtest.h>

#include <stdexcept>

#include "kestrel/inference.h"

namespace {

using namespace kestrel;

class CountingDetector final : public ImageDetector {
 public:
  int added = 0, submitted = 0, refuse_at = -1;
  bool collect_throws = false;
  void add(const image::Image&) override {
    if (added == refuse_at) throw std::runtime_error("refused");
    ++added;
  }
  void submit_added(yolo::HeadKind, const yolo::NmsOptions&) override {
    ++submitted;
    added = 0;
  }
  void discard_added() override { added = 0; }
  std::vector<std::vector<yolo::Box>> collect(StageTimes*) override {
    --submitted;  // a failed collect still takes its batch off the queue
    if (collect_throws) throw std::runtime_error("collect failed");
    return {};
  }
  int depth() const override { return 2; }
  int in_flight() const override { return submitted; }
};

TEST(ImageDetector, SubmitDiscardsWhatItAddedWhenAnImageIsRefused) {
  CountingDetector det;
  det.refuse_at = 1;
  const image::Image img = image::Image::filled(4, 4);
  const image::Image* batch[] = {&img, &img, &img};
  EXPECT_THROW(det.submit(batch, yolo::HeadKind::V8, yolo::NmsOptions::prediction()), std::runtime_error);
  EXPECT_EQ(det.added, 0);
  EXPECT_EQ(det.in_flight(), 0);
}

TEST(ImageDetector, AbandonEmptiesTheDetectorEvenWhenCollectingFails) {
  CountingDetector det;
  const image::Image img = image::Image::filled(4, 4);
  const image::Image* batch[] = {&img};
  det.submit(batch, yolo::HeadKind::V8, yolo::NmsOptions::prediction());
  det.submit(batch, yolo::HeadKind::V8, yolo::NmsOptions::prediction());
  det.add(img);
  det.collect_throws = true;
  det.abandon();
  EXPECT_EQ(det.in_flight(), 0);
  EXPECT_EQ(det.added, 0);
}

}  // namespace
