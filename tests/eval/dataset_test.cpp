// Dataset loaders: the shared COCO and YOLO datasets, and small temporary datasets for every error path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "kestrel/eval.h"
#include "test_data.h"

namespace ke = kestrel::eval;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << text;
}

void write_bytes(const fs::path& p, const std::vector<unsigned char>& b) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void put_be(std::vector<unsigned char>& b, uint32_t v, int n) {
  for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// Just a PNG signature and IHDR: enough for the header probe, and tiny.
void write_png(const fs::path& p, int w, int h) {
  std::vector<unsigned char> b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  put_be(b, w, 4);
  put_be(b, h, 4);
  for (unsigned char c : {8, 2, 0, 0, 0, 0, 0, 0, 0}) b.push_back(c);
  write_bytes(p, b);
}

// SOI, optional EXIF APP1 with an orientation, a COM segment, SOF0, EOI.
void write_jpeg(const fs::path& p, int w, int h, int orientation = 0, bool little_endian = false) {
  std::vector<unsigned char> b = {0xFF, 0xD8};
  if (orientation) {
    std::vector<unsigned char> t = {'E', 'x', 'i', 'f', 0, 0};
    auto put = [&](uint32_t v, int n) {
      if (little_endian)
        for (int i = 0; i < n; ++i) t.push_back(static_cast<unsigned char>(v >> (8 * i)));
      else
        put_be(t, v, n);
    };
    t.push_back(little_endian ? 'I' : 'M');
    t.push_back(little_endian ? 'I' : 'M');
    put(42, 2);
    put(8, 4);       // IFD0 offset
    put(2, 2);       // two entries
    put(0x010F, 2);  // Make (ASCII), skipped
    put(2, 2);
    put(4, 4);
    put(0, 4);
    put(0x0112, 2);  // Orientation, SHORT
    put(3, 2);
    put(1, 4);
    put(orientation, 2);
    put(0, 2);
    put(0, 4);       // next IFD
    b.push_back(0xFF);
    b.push_back(0xE1);
    put_be(b, static_cast<uint32_t>(t.size() + 2), 2);
    b.insert(b.end(), t.begin(), t.end());
  }
  for (int c : {0xFF, 0xFE, 0x00, 0x05, int('h'), int('i'), int('!')}) b.push_back(static_cast<unsigned char>(c));  // COM
  for (unsigned char c : {0xFF, 0xFF, 0xC2, 0x00, 0x11, 0x08}) b.push_back(c);       // fill byte + SOF2
  put_be(b, h, 2);
  put_be(b, w, 2);
  for (unsigned char c : {3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9}) b.push_back(c);
  write_bytes(p, b);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("kestrel_eval_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Expects load_dataset(path) to throw a kestrel::Error whose message contains every fragment.
void expect_load_error(const fs::path& path, std::initializer_list<std::string> fragments, ke::LoadOptions o = {}) {
  try {
    ke::load_dataset(path.string(), o);
    ADD_FAILURE() << "expected kestrel::Error loading " << path;
  } catch (const kestrel::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

const char* kCocoJson = R"({
  "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 50},
             {"id": 2, "file_name": "b.png", "width": 100, "height": 50}],
  "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [1, 2, 30, 40], "area": 1000, "iscrowd": 0},
                  {"id": 11, "image_id": 2, "category_id": 3, "bbox": [5.5, 6, 7, 8]},
                  {"id": 12, "image_id": 2, "category_id": 1, "bbox": [0, 0, 9, 9], "iscrowd": 1}],
  "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}]
})";

}  // namespace

// ------------------------------------------------------------------------------------------------
// Shared data
// ------------------------------------------------------------------------------------------------

TEST(DatasetShared, CocoValFolder) {
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  const ke::Dataset ds = ke::load_dataset(kestrel::test::data_path("coco-val").string());
  EXPECT_EQ(ds.format, ke::DatasetFormat::Coco);
  EXPECT_EQ(ds.images.size(), 124u);
  EXPECT_EQ(ds.gt.size(), 1035u);
  EXPECT_EQ(std::count_if(ds.gt.begin(), ds.gt.end(), [](const ke::GtBox& g) { return g.iscrowd; }), 12);
  EXPECT_TRUE(ds.warnings.empty());
  ASSERT_EQ(ds.categories.size(), 80u);
  EXPECT_TRUE(ds.coco_ids);
  // The published class tables agree with the official category list.
  for (int k = 0; k < 80; ++k) {
    EXPECT_EQ(ds.categories[k].id, ke::coco80_to_coco91()[k]);
    EXPECT_EQ(ds.categories[k].name, ke::coco80_names()[k]);
    EXPECT_EQ(ds.category_id_for_class(k), ke::coco80_to_coco91()[k]);
  }
  EXPECT_THROW(ds.category_id_for_class(80), kestrel::Error);
  const auto it = std::find_if(ds.images.begin(), ds.images.end(), [](const auto& r) { return r.id == 139; });
  ASSERT_NE(it, ds.images.end());
  EXPECT_EQ(it->width, 640);
  EXPECT_EQ(it->height, 426);
  EXPECT_TRUE(fs::exists(it->file));
  EXPECT_EQ(fs::path(it->file).filename(), "000000000139.jpg");
}

TEST(DatasetShared, CocoValJsonPathAndHeaderProbe) {
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  const ke::Dataset ds = ke::load_dataset(kestrel::test::data_path("coco-val/instances.json").string());
  ASSERT_EQ(ds.images.size(), 124u);
  // The header probe agrees with the JSON's sizes on 124 real COCO JPEGs.
  for (const auto& im : ds.images) {
    const auto [w, h] = ke::probe_image_size(im.file);
    EXPECT_EQ(w, im.width) << im.file;
    EXPECT_EQ(h, im.height) << im.file;
  }
}

TEST(DatasetShared, Coco128YoloLabelsMatchItsJson) {
  KESTREL_REQUIRE_DATA("coco128/labels");
  ke::LoadOptions yolo;
  yolo.format = ke::DatasetFormat::Yolo;
  const ke::Dataset y = ke::load_dataset(kestrel::test::data_path("coco128").string(), yolo);
  EXPECT_EQ(y.format, ke::DatasetFormat::Yolo);
  EXPECT_EQ(y.images.size(), 128u);
  EXPECT_TRUE(y.warnings.empty()) << y.warnings.front();
  ASSERT_EQ(y.categories.size(), 80u);  // no data.yaml: COCO-80 names, ids = class indices
  EXPECT_EQ(y.categories[79].id, 79);
  EXPECT_EQ(y.categories[79].name, "toothbrush");
  EXPECT_FALSE(y.coco_ids);
  EXPECT_EQ(y.category_id_for_class(5), 5);

  // Auto-detection picks the COCO JSON that sits in the same folder.
  const ke::Dataset c = ke::load_dataset(kestrel::test::data_path("coco128").string());
  ASSERT_EQ(c.format, ke::DatasetFormat::Coco);
  ASSERT_EQ(c.images.size(), 128u);

  // Same images (numeric stems are the COCO ids), same sizes (header probe vs JSON), and every label
  // line is the JSON's non-crowd bbox (the labels are %g-rounded normalized values: < 1e-3 px).
  std::map<int64_t, const ke::ImageRecord*> cimg;
  for (const auto& im : c.images) cimg[im.id] = &im;
  for (const auto& im : y.images) {
    ASSERT_TRUE(cimg.count(im.id)) << im.file;
    EXPECT_EQ(im.width, cimg[im.id]->width) << im.file;
    EXPECT_EQ(im.height, cimg[im.id]->height) << im.file;
  }
  std::vector<ke::GtBox> cg;
  for (const auto& g : c.gt)
    if (!g.iscrowd) cg.push_back(g);
  ASSERT_EQ(y.gt.size(), cg.size());
  // Pair each label box with the nearest unused JSON box of the same image and category.
  std::vector<bool> used(cg.size(), false);
  double worst = 0;
  for (const auto& g : y.gt) {
    const int cat = c.category_id_for_class(g.category_id);
    double best = 1e30;
    size_t bi = cg.size();
    for (size_t j = 0; j < cg.size(); ++j) {
      if (used[j] || cg[j].image_id != g.image_id || cg[j].category_id != cat) continue;
      const double d = std::max({std::fabs(g.x - cg[j].x), std::fabs(g.y - cg[j].y), std::fabs(g.w - cg[j].w),
                                 std::fabs(g.h - cg[j].h)});
      if (d < best) best = d, bi = j;
    }
    ASSERT_LT(bi, cg.size()) << "no JSON box for a label box of image " << g.image_id;
    used[bi] = true;
    worst = std::max(worst, best);
  }
  EXPECT_LT(worst, 1e-3);
}

// ------------------------------------------------------------------------------------------------
// Size probe
// ------------------------------------------------------------------------------------------------

using ProbeTest = TempDir;

TEST_F(ProbeTest, ReadsHeaders) {
  write_png(dir_ / "a.png", 123, 45);
  EXPECT_EQ(ke::probe_image_size((dir_ / "a.png").string()), std::make_pair(123, 45));
  write_jpeg(dir_ / "b.jpg", 640, 480);
  EXPECT_EQ(ke::probe_image_size((dir_ / "b.jpg").string()), std::make_pair(640, 480));
  // BMP with a top-down (negative) height.
  std::vector<unsigned char> bmp = {'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0,
                                    0x20, 0x03, 0, 0, 0x38, 0xFF, 0xFF, 0xFF};  // 800 x -200
  write_bytes(dir_ / "c.bmp", bmp);
  EXPECT_EQ(ke::probe_image_size((dir_ / "c.bmp").string()), std::make_pair(800, 200));
}

TEST_F(ProbeTest, ExifRotationSwapsWidthAndHeight) {
  write_jpeg(dir_ / "r6.jpg", 640, 480, 6);
  EXPECT_EQ(ke::probe_image_size((dir_ / "r6.jpg").string()), std::make_pair(480, 640));
  write_jpeg(dir_ / "r8.jpg", 640, 480, 8, /*little_endian=*/true);
  EXPECT_EQ(ke::probe_image_size((dir_ / "r8.jpg").string()), std::make_pair(480, 640));
  write_jpeg(dir_ / "r3.jpg", 640, 480, 3);  // upside down: same size
  EXPECT_EQ(ke::probe_image_size((dir_ / "r3.jpg").string()), std::make_pair(640, 480));
}

TEST_F(ProbeTest, BadFilesAreErrors) {
  EXPECT_THROW(ke::probe_image_size((dir_ / "missing.jpg").string()), kestrel::Error);
  write_file(dir_ / "t.jpg", std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF", 10));  // truncated before SOF
  EXPECT_THROW(ke::probe_image_size((dir_ / "t.jpg").string()), kestrel::Error);
  write_file(dir_ / "x.gif", "GIF89a....................");
  EXPECT_THROW(ke::probe_image_size((dir_ / "x.gif").string()), kestrel::Error);
}

// ------------------------------------------------------------------------------------------------
// COCO layout
// ------------------------------------------------------------------------------------------------

using CocoLoad = TempDir;

TEST_F(CocoLoad, FolderWithImagesNextToTheJson) {
  write_file(dir_ / "instances_val.json", kCocoJson);
  write_png(dir_ / "images" / "a.png", 100, 50);
  write_png(dir_ / "images" / "b.png", 100, 50);
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  EXPECT_EQ(ds.format, ke::DatasetFormat::Coco);
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(fs::path(ds.images[1].file), dir_ / "images" / "b.png");
  ASSERT_EQ(ds.categories.size(), 2u);  // sorted by id
  EXPECT_EQ(ds.categories[0].id, 1);
  EXPECT_EQ(ds.categories[0].name, "person");
  EXPECT_EQ(ds.category_id_for_class(1), 3);
  EXPECT_FALSE(ds.coco_ids);
  ASSERT_EQ(ds.gt.size(), 3u);
  EXPECT_EQ(ds.gt[0].id, 10);
  EXPECT_DOUBLE_EQ(ds.gt[0].area, 1000);      // the file's area, not w*h
  EXPECT_DOUBLE_EQ(ds.gt[1].area, 7 * 8);     // absent: w*h
  EXPECT_DOUBLE_EQ(ds.gt[1].x, 5.5);
  EXPECT_TRUE(ds.gt[2].iscrowd);
}

TEST_F(CocoLoad, OfficialLayoutWithAnnotationsFolderAndSplitFolder) {
  write_file(dir_ / "annotations" / "instances_val2017.json", kCocoJson);
  write_png(dir_ / "val2017" / "a.png", 100, 50);
  write_png(dir_ / "val2017" / "b.png", 100, 50);
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(fs::path(ds.images[0].file), dir_ / "val2017" / "a.png");
  EXPECT_EQ(fs::path(ds.root), dir_);
  // The same, naming the JSON.
  const ke::Dataset ds2 = ke::load_dataset((dir_ / "annotations" / "instances_val2017.json").string());
  EXPECT_EQ(ds2.images.size(), 2u);
}

TEST_F(CocoLoad, SomeImagesMissingWarnsAndSkips) {
  write_file(dir_ / "instances.json", kCocoJson);
  write_png(dir_ / "images" / "a.png", 100, 50);  // b.png is missing
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  ASSERT_EQ(ds.images.size(), 1u);
  EXPECT_EQ(ds.images[0].id, 1);
  ASSERT_EQ(ds.gt.size(), 1u);  // image 2's two annotations went with it
  ASSERT_EQ(ds.warnings.size(), 1u);
  EXPECT_NE(ds.warnings[0].find("1 of 2 image files are missing"), std::string::npos) << ds.warnings[0];
  EXPECT_NE(ds.warnings[0].find("2 annotations"), std::string::npos) << ds.warnings[0];
}

TEST_F(CocoLoad, AllImagesMissingIsAnError) {
  write_file(dir_ / "instances.json", kCocoJson);
  expect_load_error(dir_, {"none of its 2 images", "a.png"});
  // ...unless the images are not wanted (evaluating a results file against the bare JSON).
  ke::LoadOptions o;
  o.check_images = false;
  EXPECT_EQ(ke::load_dataset(dir_.string(), o).images.size(), 2u);
}

TEST_F(CocoLoad, MalformedJson) {
  write_file(dir_ / "instances.json", "{\"images\": [");
  expect_load_error(dir_ / "instances.json", {"instances.json", "invalid JSON"});
  write_file(dir_ / "instances.json", R"({"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1}],
                                          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]})");
  expect_load_error(dir_ / "instances.json", {"annotations[0].bbox"});
  write_file(dir_ / "instances.json", R"({"images": [{"id": "x", "file_name": "a.png"}], "categories": [{"id": 1}]})");
  expect_load_error(dir_ / "instances.json", {"images[0].id must be an integer"});
  write_file(dir_ / "instances.json", R"({"images": [{"id": 1, "file_name": "a.png"}, {"id": 1, "file_name": "b.png"}],
                                          "categories": [{"id": 1}]})");
  expect_load_error(dir_ / "instances.json", {"duplicate image id 1"});
  write_file(dir_ / "instances.json", R"({"images": [], "categories": [{"id": 1}]})");
  expect_load_error(dir_ / "instances.json", {"no images"});
  write_file(dir_ / "instances.json", R"([1, 2])");
  expect_load_error(dir_ / "instances.json", {"not a COCO instances file"});
}

TEST_F(CocoLoad, UnlistedImagesAndCategoriesAreDroppedWithAWarning) {
  write_file(dir_ / "instances.json", R"({"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                      {"id": 2, "image_id": 9, "category_id": 1, "bbox": [0, 0, 5, 5]},
                      {"id": 3, "image_id": 1, "category_id": 7, "bbox": [0, 0, 5, 5]}]})");
  write_png(dir_ / "images" / "a.png", 10, 10);
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  EXPECT_EQ(ds.gt.size(), 1u);
  EXPECT_EQ(ds.warnings.size(), 2u);
}

TEST_F(CocoLoad, SeveralJsonFilesNeedAChoice) {
  write_file(dir_ / "annotations" / "instances_train.json", kCocoJson);
  write_file(dir_ / "annotations" / "instances_val.json", kCocoJson);
  expect_load_error(dir_, {"several COCO annotation files", "instances_train.json", "instances_val.json"});
}

// ------------------------------------------------------------------------------------------------
// YOLO layout
// ------------------------------------------------------------------------------------------------

using YoloLoad = TempDir;

TEST_F(YoloLoad, LabelsBecomePixelBoxes) {
  write_png(dir_ / "images" / "000000000042.png", 200, 100);
  write_png(dir_ / "images" / "000000000007.png", 64, 64);  // no label file: background image
  write_file(dir_ / "labels" / "000000000042.txt",
             "1 0.5 0.5 0.2 0.4\n\n  0  0.25 0.75 0.5 0.5  \n"
             "2 0.1 0.1 0.3 0.1 0.2 0.4\n");  // polygon → its enclosing box
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  EXPECT_EQ(ds.format, ke::DatasetFormat::Yolo);
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(ds.images[0].id, 7);  // numeric stems are the ids; sorted by path
  EXPECT_EQ(ds.images[1].id, 42);
  EXPECT_EQ(ds.images[1].width, 200);
  EXPECT_EQ(ds.images[1].height, 100);
  ASSERT_EQ(ds.gt.size(), 3u);
  const ke::GtBox& a = ds.gt[0];
  EXPECT_EQ(a.image_id, 42);
  EXPECT_EQ(a.category_id, 1);
  EXPECT_DOUBLE_EQ(a.x, 80);
  EXPECT_DOUBLE_EQ(a.y, 30);
  EXPECT_DOUBLE_EQ(a.w, 40);
  EXPECT_DOUBLE_EQ(a.h, 40);
  EXPECT_DOUBLE_EQ(a.area, 1600);
  EXPECT_FALSE(a.iscrowd);
  EXPECT_DOUBLE_EQ(ds.gt[1].x, 0);
  EXPECT_DOUBLE_EQ(ds.gt[1].y, 50);
  const ke::GtBox& p = ds.gt[2];
  EXPECT_DOUBLE_EQ(p.x, 0.1 * 200);
  EXPECT_DOUBLE_EQ(p.y, 0.1 * 100);
  EXPECT_NEAR(p.w, 0.2 * 200, 1e-9);
  EXPECT_NEAR(p.h, 0.3 * 100, 1e-9);
  EXPECT_EQ(ds.gt[0].id, 1);
  EXPECT_EQ(ds.gt[2].id, 3);
}

TEST_F(YoloLoad, NonNumericStemsGetSequentialIds) {
  write_png(dir_ / "images" / "cat.png", 10, 10);
  write_png(dir_ / "images" / "12.png", 10, 10);
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(ds.images[0].id, 1);
  EXPECT_EQ(ds.images[1].id, 2);
}

TEST_F(YoloLoad, NestedSplitFoldersAndCustomProbe) {
  write_file(dir_ / "images" / "val" / "a.webp", "not read by the custom probe");
  write_file(dir_ / "labels" / "val" / "a.txt", "0 0.5 0.5 1 1\n");
  int calls = 0;
  const ke::Dataset ds = ke::load_dataset(dir_.string(), [&](const std::string&) {
    ++calls;
    return std::make_pair(30, 20);
  });
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(ds.gt.size(), 1u);
  EXPECT_DOUBLE_EQ(ds.gt[0].w, 30);
  EXPECT_DOUBLE_EQ(ds.gt[0].h, 20);
}

TEST_F(YoloLoad, DataYamlNamesListPathAndVal) {
  write_file(dir_ / "cfg" / "data.yaml", "path: ../ds\nval: images/val\nnames: [cat, dog]\n");
  write_png(dir_ / "ds" / "images" / "val" / "x.png", 10, 10);
  write_file(dir_ / "ds" / "labels" / "val" / "x.txt", "1 0.5 0.5 0.5 0.5\n");
  write_png(dir_ / "ds" / "images" / "train" / "y.png", 10, 10);  // not the val split
  const ke::Dataset ds = ke::load_dataset((dir_ / "cfg" / "data.yaml").string());
  ASSERT_EQ(ds.images.size(), 1u);
  ASSERT_EQ(ds.categories.size(), 2u);
  EXPECT_EQ(ds.categories[1].name, "dog");
  ASSERT_EQ(ds.gt.size(), 1u);
  EXPECT_EQ(ds.gt[0].category_id, 1);
}

TEST_F(YoloLoad, DataYamlNamesMapInTheFolder) {
  write_file(dir_ / "data.yaml", "names:\n  0: plane\n  1: ship\n");
  write_png(dir_ / "images" / "x.png", 10, 10);
  write_file(dir_ / "labels" / "x.txt", "1 0.5 0.5 0.5 0.5\n");
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  EXPECT_EQ(ds.format, ke::DatasetFormat::Yolo);
  ASSERT_EQ(ds.categories.size(), 2u);
  EXPECT_EQ(ds.categories[1].id, 1);
  EXPECT_EQ(ds.categories[1].name, "ship");
  EXPECT_EQ(fs::path(ds.annotations), dir_ / "data.yaml");
}

TEST_F(YoloLoad, DataYamlNamesMapMustBeContiguous) {
  write_file(dir_ / "data.yaml", "names:\n  0: plane\n  2: ship\n");
  write_png(dir_ / "images" / "x.png", 10, 10);
  expect_load_error(dir_, {"data.yaml", "class ids must be 0..1", "found id 2"});
}

TEST_F(YoloLoad, DataYamlValAsImageList) {
  write_file(dir_ / "data.yaml", "val: val.txt\nnames: [a]\n");
  write_png(dir_ / "images" / "p.png", 10, 10);
  write_png(dir_ / "images" / "q.png", 10, 10);
  write_file(dir_ / "val.txt", "./images/q.png\n");
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  ASSERT_EQ(ds.images.size(), 1u);
  EXPECT_EQ(fs::path(ds.images[0].file).filename(), "q.png");
}

TEST_F(YoloLoad, ClassOutOfRange) {
  write_file(dir_ / "data.yaml", "names: [a, b]\n");
  write_png(dir_ / "images" / "x.png", 10, 10);
  write_file(dir_ / "labels" / "x.txt", "0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n");
  expect_load_error(dir_, {"x.txt:2", "class 2 is out of range", "2 class names"});
}

TEST_F(YoloLoad, ClassOutOfRangeOfDefaultCocoNames) {
  write_png(dir_ / "images" / "x.png", 10, 10);
  write_file(dir_ / "labels" / "x.txt", "80 0.5 0.5 0.1 0.1\n");
  expect_load_error(dir_, {"x.txt:1", "class 80 is out of range", "data.yaml"});
}

TEST_F(YoloLoad, MalformedLines) {
  write_png(dir_ / "images" / "x.png", 10, 10);
  write_file(dir_ / "labels" / "x.txt", "0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n");
  expect_load_error(dir_, {"x.txt:2", "malformed label line", "4 values"});
  write_file(dir_ / "labels" / "x.txt", "0 0.5 abc 0.1 0.1\n");
  expect_load_error(dir_, {"x.txt:1", "'abc' is not a number"});
  write_file(dir_ / "labels" / "x.txt", "1.5 0.5 0.5 0.1 0.1\n");
  expect_load_error(dir_, {"x.txt:1", "not a non-negative integer"});
  write_file(dir_ / "labels" / "x.txt", "0 0.5 0.5 1.2 0.1\n");
  expect_load_error(dir_, {"x.txt:1", "not normalized"});
  write_file(dir_ / "labels" / "x.txt", "0 0.5 0.5 0.1 0.1 0.9\n");
  expect_load_error(dir_, {"x.txt:1", "6 values"});
}

TEST_F(YoloLoad, DuplicateRowsAreDroppedWithAWarning) {
  write_png(dir_ / "images" / "x.png", 10, 10);
  write_file(dir_ / "labels" / "x.txt", "0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n");
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  EXPECT_EQ(ds.gt.size(), 1u);
  ASSERT_EQ(ds.warnings.size(), 1u);
  EXPECT_NE(ds.warnings[0].find("1 duplicate"), std::string::npos);
}

TEST_F(YoloLoad, OrphanLabelFilesWarn) {
  write_png(dir_ / "images" / "x.png", 10, 10);
  write_file(dir_ / "labels" / "x.txt", "0 0.5 0.5 0.1 0.1\n");
  write_file(dir_ / "labels" / "gone.txt", "0 0.5 0.5 0.1 0.1\n");
  const ke::Dataset ds = ke::load_dataset(dir_.string());
  EXPECT_EQ(ds.images.size(), 1u);
  ASSERT_EQ(ds.warnings.size(), 1u);
  EXPECT_NE(ds.warnings[0].find("1 of 2 label files have no matching image"), std::string::npos) << ds.warnings[0];
}

TEST_F(YoloLoad, LabelsWithoutAnyImageIsAnError) {
  write_file(dir_ / "labels" / "a.txt", "0 0.5 0.5 0.1 0.1\n");
  write_file(dir_ / "labels" / "b.txt", "0 0.5 0.5 0.1 0.1\n");
  expect_load_error(dir_, {"none of the 2 label files", "matching image"});
}

TEST_F(YoloLoad, EmptyImagesFolder) {
  fs::create_directories(dir_ / "images");
  expect_load_error(dir_, {"no images found", "empty dataset"});
}

TEST_F(YoloLoad, UnreadableImageSizeForLabelledImage) {
  write_file(dir_ / "images" / "x.jpg", "garbage");
  write_file(dir_ / "labels" / "x.txt", "0 0.5 0.5 0.1 0.1\n");
  expect_load_error(dir_, {"x.jpg"});
}

// ------------------------------------------------------------------------------------------------
// Paths
// ------------------------------------------------------------------------------------------------

using DatasetPaths = TempDir;

TEST_F(DatasetPaths, MissingOrUnknown) {
  expect_load_error(dir_ / "nope", {"dataset not found", "nope"});
  expect_load_error(dir_, {"is not a dataset"});
  write_file(dir_ / "x.txt", "hello");
  expect_load_error(dir_ / "x.txt", {"unsupported dataset file"});
  write_file(dir_ / "bad.yaml", "names: [a, b\n");
  expect_load_error(dir_ / "bad.yaml", {"bad.yaml", "invalid YAML"});
  ke::LoadOptions coco;
  coco.format = ke::DatasetFormat::Coco;
  fs::create_directories(dir_ / "images");
  expect_load_error(dir_, {"no COCO annotation file"}, coco);
}
