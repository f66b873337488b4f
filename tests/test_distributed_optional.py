"""fewshot without Ray installed: the package imports, the Ray helpers say what to install."""

import subprocess
import sys


def test_fewshot_imports_without_ray_and_says_which_extra_to_install():
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if ray were not installed
        "import fewshot, fewshot.distributed\n"
        "try:\n"
        "    fewshot.distributed.embed_dataset(None, fewshot.DistilEmbedder())\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install 'fewshot[ray]'" in result.stdout
