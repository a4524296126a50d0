"""Explanations of one prediction, computed on demand from the prediction model itself.

- ``attention``: every layer's and head's weights for one text, and their rollout (``attention.attention``);
- ``attributions``: integrated gradients and gradient×input toward one class (``attributions.attributions``);
- ``tokens``: which word-pieces are special and which word each belongs to, asked of the tokenizer.

The functions are imported from their modules (``from bertdemo.explain.attention import attention``): the package
does not re-export them, so ``bertdemo.explain.attention`` always names the module.
"""
