"""Driving perception (issue 14): object detection and road segmentation.

Built in slices; not yet registered as a domain (no `deepfield driving` verbs, no
run directory or export). The numpy foundation:

- `detection_set`: `Frame` and `DetectionSet`, what the readers return, and image checks.
- `boxes`: box geometry (areas, IoU, clipping, YOLO's normalised boxes to pixels).
- `letterbox`: resizing any image to the model's input with padding, and mapping boxes
  to and from the letterboxed frame.
- `yolo`: the `yolo:PATH` reader (Ultralytics layout, optional `masks/`).
- `kitti`: the `kitti:PATH` reader (KITTI object layout, class map, DontCare regions).
- `detection_metrics`: COCO mAP (checked against pycocotools in the tests).
- `kitti_metrics`: KITTI 2D AP (R40, easy/moderate/hard, DontCare regions).

The multi-task network (library functions; no verbs yet):

- `targets`: FCOS target assignment (pyramid levels, size ranges, centre sampling).
- `losses`: focal class loss, CIoU box loss, centerness, segmentation CE + Dice.
- `model`: ResNet + FPN trunk with FCOS and road/lane heads, in-graph decoding and NMS.
- `pipeline`: frames to tf.data with joint box/mask augmentation and targets.
- `train_loop`: `train_perception` and `evaluate_perception` (COCO mAP, mask IoU).
"""
