#!/usr/bin/python3
"""Drives a Quarry server from Python the way an MLOps platform would: stubs generated from the
protos by protoc + grpc_python_plugin, then submit a job, watch it (reconnecting from the last
sequence number after a deliberate disconnect), and download its artifacts, verifying sha256.

Usage: mlops_client.py --stubs DIR --server ADDR --model DIR --calib FILE --out DIR
Prints one JSON object per line: {"event": ...} while watching, {"summary": ...} at the end.
Exit 0 when the job succeeded and every artifact downloaded and verified.
"""
import argparse
import hashlib
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stubs", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--calib", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--disconnect-after", type=int, default=3)
    args = ap.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    from quarry.v1 import jobs_pb2, jobs_pb2_grpc

    channel = grpc.insecure_channel(args.server)
    stub = jobs_pb2_grpc.QuarryServiceStub(channel)

    # Submit (idempotent: a retry with the same request_id returns the same job).
    spec = jobs_pb2.JobSpec(
        model=jobs_pb2.ModelSource(path=args.model),
        calibration=jobs_pb2.CalibrationData(path=args.calib, num_samples=2, seq_len=32),
        preset="int4_wo_128",
        name="from-python",
        labels={"platform": "mlops-test"},
    )
    job = stub.SubmitJob(jobs_pb2.SubmitJobRequest(spec=spec, request_id="python-run-1"), timeout=30)
    again = stub.SubmitJob(jobs_pb2.SubmitJobRequest(spec=spec, request_id="python-run-1"), timeout=30)
    assert again.id == job.id, "request_id did not make SubmitJob idempotent"

    # Watch, disconnecting once on purpose, then resuming from the last seq seen.
    seen = []
    last_seq = 0
    final_state = None
    disconnected = False
    while True:
        call = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.id, from_seq=last_seq, follow=True))
        try:
            for event in call:
                assert event.seq == last_seq + 1, f"gap or repeat: {last_seq} -> {event.seq}"
                last_seq = event.seq
                seen.append(event.seq)
                kind = event.WhichOneof("payload")
                print(json.dumps({"event": {"seq": event.seq, "kind": kind}}), flush=True)
                if kind == "state":
                    final_state = event.state.state
                if not disconnected and len(seen) == args.disconnect_after:
                    disconnected = True
                    call.cancel()
                    break
            else:
                break  # the stream ended: the job is over
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                raise

    job = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.id), timeout=30)
    if job.state != jobs_pb2.JOB_STATE_SUCCEEDED:
        print(json.dumps({"summary": {"job": job.id, "state": jobs_pb2.JobState.Name(job.state),
                                      "error": job.error}}))
        return 1
    assert final_state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert len(seen) == job.last_event_seq, (len(seen), job.last_event_seq)

    # Download every artifact, checking size and sha256.
    files = {}
    for art in job.artifacts:
        path = os.path.join(args.out, art.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sha = hashlib.sha256()
        size = 0
        with open(path, "wb") as f:
            for chunk in stub.DownloadArtifact(
                    jobs_pb2.DownloadArtifactRequest(job_id=job.id, name=art.name)):
                assert chunk.offset == size
                f.write(chunk.data)
                sha.update(chunk.data)
                size += len(chunk.data)
        assert size == art.size, (art.name, size, art.size)
        assert sha.hexdigest() == art.sha256, (art.name, sha.hexdigest(), art.sha256)
        files[art.name] = art.sha256

    # A bad request gets a gRPC status with a clear message.
    try:
        stub.GetJob(jobs_pb2.GetJobRequest(job_id="no-such-job"), timeout=30)
        return 1
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e.code()
        assert "no-such-job" in e.details()

    print(json.dumps({"summary": {"job": job.id, "state": "JOB_STATE_SUCCEEDED",
                                  "events": len(seen), "files": files}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
