"""Knowledge distillation: a teacher, its assistants, a student (TAKD, Mirzadeh et al., AAAI 2020).

``kd`` is the loss (Eq. 3 of arXiv 1902.03393); ``digits`` runs the paper's
plain-CNN ladder on scikit-learn's digits. Nothing here imports MuJoCo.

Policies (``rwrl distill``), imported from their modules, not from here
(they reach the envs): ``policy`` is the action loss, the fit and the
state sources; ``runs`` reads teachers from and writes students as ``rwrl
run`` directories; ``chain`` runs teacher -> assistants -> student.
"""

from rwrl.distill.kd import batch_kd_loss, check_kd_args, kd_loss, soft_kl

__all__ = ["batch_kd_loss", "check_kd_args", "kd_loss", "soft_kl"]
