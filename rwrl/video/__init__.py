"""The rate-control family: video clips, a real encoder, a batched env (no MuJoCo).

* :mod:`rwrl.video.y4m`: read and write YUV4MPEG2 (``.y4m``) files, 8-bit 4:2:0.
* :mod:`rwrl.video.clip`: ``Clip`` (YUV 4:2:0 frames and their origin), RGB to BT.601 YUV.
* :mod:`rwrl.video.corpus`: procedural clips from a seed, the corpus on disk
  (``rwrl video corpus``), its manifest and its fixed train/test split by clip.
* :mod:`rwrl.video.x264`: the real libx264 (PyAV's) with a chosen QP per frame, and
  x264's own one- and two-pass rate control.
* :mod:`rwrl.video.features`: first-pass statistics per frame (the observation's features).
* :mod:`rwrl.video.env`: ``RateControlEnv``, the batched env (``rwrl/ratecontrol-v0``
  through ``rwrl.envs.ratecontrol``): a QP per frame, PSNR reward, the episode's budget.
* :mod:`rwrl.video.baselines`: constant QP by bisection; x264's two-pass at the budget.
* :mod:`rwrl.video.bdrate`: Bjontegaard delta rate and PSNR.
* :mod:`rwrl.video.teacher`: the evolution-strategies teacher (CMA-ES per clip and budget).
* :mod:`rwrl.video.student`: the imitation student with auxiliary heads and a budget guard.

This room sits on floor 1 of the layer map (DESIGN.md): it imports ``rwrl.core``,
``rwrl.storage`` (atomic files) and third-party packages, never the tasks or envs;
clips rendered from the tasks come from ``rwrl.datasets.video_clips``, a floor above.
"""
