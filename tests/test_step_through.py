import numpy as np

from minirpn import FasterRCNN
from minirpn.step_through import STAGE_OUTPUTS

from test_faster_rcnn import tiny_batch, tiny_config

INFERENCE = ["preprocess", "features", "anchors", "rpn", "proposals",
             "roi_features", "head", "detections"]
TRAINING = ["preprocess", "features", "anchors", "rpn", "proposals",
            "anchor_labels", "proposal_targets", "losses", "roi_features",
            "head", "detections"]


def test_inference_trace_keeps_every_stage_in_order():
    model = FasterRCNN(tiny_config())
    images, _ = tiny_batch()
    trace = model.step_through(images[0])
    assert trace.names == INFERENCE
    assert set(trace.names) <= set(STAGE_OUTPUTS)
    anchors = trace["anchors"]["anchors"]
    feats = trace["features"]["features"]
    assert anchors.shape == (feats.shape[2] * feats.shape[3] * model.config.num_anchors, 4)
    assert trace["rpn"]["scores"].shape == (len(anchors), 2)
    props = trace["proposals"]
    assert len(props["boxes"]) <= len(props["before_nms_boxes"])
    assert len(props["removed_by_nms"]) + len(props.result.step("nms").removed) >= 0
    head = trace["head"]
    P, K = head["class_scores"].shape
    assert head["class_boxes"].shape == (P, K, 4) and K == 3
    np.testing.assert_allclose(head["class_probs"].sum(axis=1), 1.0)
    assert trace["roi_features"]["crops"].shape[0] == P
    assert all(s.summary and s.seconds >= 0 for s in trace)


def test_training_trace_explains_anchors_and_matches_detect():
    model = FasterRCNN(tiny_config())
    images, targets = tiny_batch()
    trace = model.step_through(images[0], targets[0])
    assert trace.names == TRAINING
    labels = trace["anchor_labels"].result
    ignored = int(np.flatnonzero(labels.labels == -1)[0])
    assert f"anchor {ignored}" in labels.explain(ignored)
    assert trace["losses"]["total"] > 0
    det = model.detect(images[:1])[0]
    np.testing.assert_allclose(trace["detections"]["boxes"], det["boxes"])


def test_lazy_trace_runs_one_stage_at_a_time():
    model = FasterRCNN(tiny_config())
    images, _ = tiny_batch()
    trace = model.step_through(images[0], lazy=True)
    assert trace.names == []
    assert trace.next().name == "preprocess"
    assert trace.next().name == "features"
    assert trace.names == ["preprocess", "features"]
    trace.run()
    assert trace.names == INFERENCE and trace.next() is None
    assert "detections" in trace.summary()
