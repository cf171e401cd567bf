# python bench/experiments/slice.py H.pt OUT.pt 0   (0: the Japan heads, 4: the RDD2022 ones)
"""Slice an 8-class source-aware model (0-3 Japan-style, 4-7 RDD2022-style) into a 4-class model keeping rows
`start..start+3` of each scale's last class conv."""
import sys, torch
src, dst, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
ck = torch.load(src, map_location="cpu", weights_only=False)
m = (ck.get("ema") or ck["model"]).float()
det = m.model[-1]
for seq in det.cv3:
    conv = seq[-1]
    new = torch.nn.Conv2d(conv.in_channels, 4, 1)
    new.weight.data = conv.weight.data[start:start + 4].clone()
    new.bias.data = conv.bias.data[start:start + 4].clone()
    seq[-1] = new
for attr in ("one2one_cv3",):
    assert not hasattr(det, attr) or getattr(det, attr) is None, attr
det.nc = 4; det.no = 4 + det.reg_max * 4
m.nc = 4; m.yaml["nc"] = 4
m.names = {0: "D00", 1: "D10", 2: "D20", 3: "D40"}
ck.update(model=m.half(), ema=None, optimizer=None, epoch=-1)
ck.get("train_args", {}).update(data=None)
torch.save(ck, dst)
print("ok", dst)
