"""The rate-control family: video clips, a real encoder, a batched env (no MuJoCo).

* :mod:`rwrl.video.y4m`: read and write YUV4MPEG2 (``.y4m``) files, 8-bit 4:2:0.
* :mod:`rwrl.video.clip`: ``Clip`` (YUV 4:2:0 frames and their origin), RGB to BT.601 YUV.
* :mod:`rwrl.video.corpus`: procedural clips from a seed, the corpus on disk
  (``rwrl video corpus``), its manifest and its fixed train/test split by clip.

This room sits on floor 1 of the layer map (DESIGN.md): it imports ``rwrl.core``,
``rwrl.storage`` (atomic files) and third-party packages, never the tasks or envs;
clips rendered from the tasks come from ``rwrl.datasets.video_clips``, a floor above.
"""
