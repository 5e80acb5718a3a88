"""Continual learning: pieces an agent composes to learn across changes without forgetting.

``digits`` holds the task sequences the papers' kind of benchmark runs on (permuted and split
versions of scikit-learn's bundled digits); the regularizers of the loss-approximation view
(Yin et al. 2020) and HCL's flow-based model and detector (Kirichenko et al. 2021) sit beside it.
This room is on the agents' floor: it imports ``rwrl.core`` and nothing above.
"""
