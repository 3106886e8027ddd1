"""The seed's usage example, runnable with torchrun.

    torchrun --nproc-per-node 8 examples/alltoall_allgather_bmm.py                   # CPU, gloo
    torchrun --nproc-per-node 8 examples/alltoall_allgather_bmm.py --backend hccl    # Ascend NPU
    torchrun --nproc-per-node 8 examples/alltoall_allgather_bmm.py --backend hccl --graph   # torchair graph

Groups are built as in the seed: ep group k = ranks [j + ep*k], tp group k = ranks [j*ep + k].
On an NPU the op gets what the seed gives it, the groups' HCCL communicator names
(`group._get_backend(torch.device("npu")).get_hccl_comm_name(rank)`); gloo and NCCL groups have
none, so elsewhere it gets the ProcessGroups themselves (their c10d names work as well).
On an NPU with the moe_mc2 OPP package installed the call runs the fused kernel; `--graph`
compiles it with torchair into one AlltoAllAllGatherBatchMatMul node. Elsewhere the portable
overlapped runtime runs it. Rank 0 writes y_<n>.bin like the seed when --save is given.
"""
import argparse
import os

import torch
import torch.distributed as dist

import moe_mc2
from moe_mc2.contract.problem import check_problem
from moe_mc2.launch import build_ep_tp_groups


def group_arguments(ep_group, tp_group, backend: str):
    """What the op is given for group_ep / group_tp: HCCL communicator names on an NPU (the seed),
    the ProcessGroups elsewhere."""
    if backend != "hccl":
        return ep_group, tp_group
    rank = dist.get_rank()
    npu = torch.device("npu")
    return (ep_group._get_backend(npu).get_hccl_comm_name(rank),
            tp_group._get_backend(npu).get_hccl_comm_name(rank))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="gloo", choices=("gloo", "nccl", "hccl"))
    p.add_argument("--ep", type=int, default=4)
    p.add_argument("--tp", type=int, default=2)
    p.add_argument("--E", type=int, default=4)
    p.add_argument("--C", type=int, default=1024)
    p.add_argument("--H", type=int, default=1024)
    p.add_argument("--M", type=int, default=8192)
    p.add_argument("--shard-type", type=int, default=1, choices=(0, 1))
    p.add_argument("--act", default="None")
    p.add_argument("--transpose-weight", action="store_true")
    p.add_argument("--graph", action="store_true", help="compile the call with torchair (NPU only)")
    p.add_argument("--save", action="store_true")
    a = p.parse_args()
    dtype = torch.bfloat16 if a.backend == "gloo" else torch.float16
    try:  # every size in the user's terms before any rank joins: nothing is rounded (C/tp, M/tp)
        check_problem("alltoall_allgather_bmm.py", ep=a.ep, tp=a.tp, E=a.E, C=a.C, H=a.H, M=a.M,
                      shard_type=a.shard_type, dtype=dtype, act=a.act)
    except (ValueError, TypeError) as exc:
        raise SystemExit(str(exc)) from None

    rank = int(os.environ["RANK"])
    device = torch.device("cpu")
    if a.backend == "hccl":
        import torch_npu  # noqa: F401  (registers the npu device and hccl)
        torch.npu.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        device = torch.device("npu")
    elif a.backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        device = torch.device("cuda")
    if a.graph and a.backend != "hccl":
        raise SystemExit("--graph needs torchair, i.e. an NPU (--backend hccl)")
    dist.init_process_group(a.backend)
    if dist.get_world_size() != a.ep * a.tp:
        raise SystemExit(f"world size {dist.get_world_size()} != ep*tp = {a.ep * a.tp}")
    ep_group, tp_group = build_ep_tp_groups(a.ep, a.tp)
    group_ep, group_tp = group_arguments(ep_group, tp_group, a.backend)

    El, N = a.E // a.ep, a.M // a.tp
    x_shape = (a.E, a.C // a.tp, a.H) if a.shard_type == 1 else (a.E, a.C, a.H // a.tp)
    x = torch.rand(x_shape).to(device, dtype)
    if a.transpose_weight:
        weight = torch.rand(El, N, a.H).to(device, dtype).transpose(1, 2)  # no copy: the op takes it as is
    else:
        weight = torch.rand(El, a.H, N).to(device, dtype)
    bias = torch.rand(El, 1, N).to(device, torch.float16 if dtype == torch.float16 else torch.float32)

    def call(x, weight, bias):
        return moe_mc2.npu_alltoall_allgather_bmm(
            x, weight, bias=bias, group_ep=group_ep, group_ep_worldsize=a.ep, group_tp=group_tp,
            group_tp_worldsize=a.tp, shard_type=a.shard_type, act_type=a.act, need_allgather_out=True,
            need_activation_feature=False)

    if a.graph:
        import torchair

        call = torch.compile(call, backend=torchair.get_npu_backend(), dynamic=False)
    y1, y2, y3 = call(x, weight, bias)
    print(f"rank {rank}: y1 {tuple(y1.shape)} y2 {tuple(y2.shape)} y3 {tuple(y3.shape)}", flush=True)
    if rank == 0 and a.save:
        for n, y in enumerate((y1, y2, y3)):
            y.float().cpu().numpy().tofile(f"./y_{n}.bin")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
