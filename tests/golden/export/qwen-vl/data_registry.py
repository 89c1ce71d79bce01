# Paste into qwen-vl-finetune/qwenvl/data/__init__.py beside the other datasets (written by datakit
# export), then train with --dataset_use datakit_cxr_train

DATAKIT_CXR_TRAIN = {
    "annotation_path": "RUN/export/qwen-vl/train.jsonl",
    "data_path": "RUN/export/qwen-vl",
}
DATAKIT_CXR_VAL = {
    "annotation_path": "RUN/export/qwen-vl/val.jsonl",
    "data_path": "RUN/export/qwen-vl",
}
DATAKIT_CXR_TEST = {
    "annotation_path": "RUN/export/qwen-vl/test.jsonl",
    "data_path": "RUN/export/qwen-vl",
}

data_dict["datakit_cxr_train"] = DATAKIT_CXR_TRAIN
data_dict["datakit_cxr_val"] = DATAKIT_CXR_VAL
data_dict["datakit_cxr_test"] = DATAKIT_CXR_TEST
