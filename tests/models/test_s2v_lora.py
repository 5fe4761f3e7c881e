import torch
from peft import LoraConfig

# LiveAvatar's targets (q, k, v, o, ffn.0, ffn.2) in our naming
TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]


def test_lora_adapter_attaches_and_runs(tiny_random, make_inputs, forward):
    inputs = make_inputs(tiny_random)
    before = forward(tiny_random, inputs)
    tiny_random.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=TARGETS))
    lora_b = {n: p for n, p in tiny_random.named_parameters() if "lora_B" in n}
    # 3 blocks x (2 attentions x 4 + 2 ffn) + 2 injectors x 4
    assert len(lora_b) == 3 * 10 + 2 * 4
    torch.testing.assert_close(forward(tiny_random, inputs), before)  # lora_B starts at zero
    with torch.no_grad():
        for p in lora_b.values():
            p.normal_(std=0.1)
    after = forward(tiny_random, inputs)
    assert after.shape == before.shape and not torch.allclose(after, before)
    trainable = {n for n, p in tiny_random.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
