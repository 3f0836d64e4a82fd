"""`Graph`: collects ONNX nodes, initializers, inputs and outputs, hands out unique tensor names,
and hides the few operators whose signature changed between the opsets fastrnn writes."""
import numpy as np


class Graph:
    """One ONNX graph under construction for `opset` (the `onnx` module is passed in: it is an
    optional dependency imported only when exporting)."""

    def __init__(self, onnx, opset):
        self.onnx, self.h, self.opset = onnx, onnx.helper, int(opset)
        self.FLOAT, self.INT64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def name(self, base):
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, base, array):
        name = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, base, array):
        """A float32 initializer (the graph always holds float32 weights)."""
        return self.const(base, np.ascontiguousarray(array, dtype=np.float32))

    def ints(self, base, values):
        """An int64 initializer (shapes, axes, indices)."""
        return self.const(base, np.asarray(values, np.int64))

    def op(self, op_type, inputs, n_out=1, out=None, **attrs):
        """Add a node; returns its output name (a list of names when n_out > 1). `out` names a
        single output (a graph output)."""
        outs = [out] if out else [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op_type, list(inputs), outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def reduce(self, op_type, x, axes, keepdims=0, out=None):
        """ReduceSum/ReduceMax/ReduceMean over `axes`: axes is an input from opset 13 (ReduceSum)
        or 18 (the others), an attribute before."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints("axes", axes)], out=out, keepdims=keepdims)
        return self.op(op_type, [x], out=out, axes=list(axes), keepdims=keepdims)

    def linear(self, x, weight, bias, base="head", out=None):
        """x @ weight^T + bias over x's last axis (a Linear layer)."""
        y = self.op("MatMul", [x, self.weight(f"{base}_wT", np.asarray(weight).T)])
        return self.op("Add", [y, self.weight(f"{base}_b", bias)], out=out)

    def input(self, name, elem, shape):
        self.inputs.append(self.h.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, name, elem, shape):
        self.outputs.append(self.h.make_tensor_value_info(name, elem, shape))

    def model(self, graph_name):
        graph = self.h.make_graph(self.nodes, graph_name, self.inputs, self.outputs, self.inits)
        opsets = [self.h.make_opsetid("", self.opset)]
        # the oldest IR version that carries this opset, so older runtimes open the file too
        return self.h.make_model(graph, opset_imports=opsets, producer_name="fastrnn",
                                 ir_version=self.h.find_min_ir_version_for(opsets))
