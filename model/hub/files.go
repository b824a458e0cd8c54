package hub

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Checkpoint file names, as transformers names them.
const (
	configFile           = "config.json"
	preprocessorFile     = "preprocessor_config.json"
	safetensorsFile      = "model.safetensors"
	safetensorsIndexFile = "model.safetensors.index.json"
)

// metadataFiles are the small files a BLIP-2 checkpoint may carry besides
// its weights: model, generation, image processor and tokenizer settings.
var metadataFiles = []string{
	configFile,
	"generation_config.json",
	preprocessorFile,
	"processor_config.json",
	"tokenizer.json",
	"tokenizer_config.json",
	"special_tokens_map.json",
	"added_tokens.json",
	"vocab.json",
	"merges.txt",
	"spiece.model",
	"chat_template.json",
	"chat_template.jinja",
}

// tokenizerFiles are the files of which one identifies a usable tokenizer.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "vocab.json", "spiece.model"}

// downloadPlan lists the repository files to fetch.
type downloadPlan struct {
	// files are fetched first, in order.
	files []string
	// index, when set, is one of files: a sharded safetensors index whose
	// shards are fetched once it is read.
	index string
}

// planDownload picks from a repository's file list the metadata files and
// the safetensors weights (single file preferred, as transformers does).
// Other weight formats (*.bin, *.h5, *.msgpack, *.onnx) are never fetched:
// only safetensors checkpoints can be loaded.
func planDownload(repoFiles []string) (downloadPlan, error) {
	present := make(map[string]bool, len(repoFiles))
	for _, name := range repoFiles {
		present[name] = true
	}
	var plan downloadPlan
	for _, name := range metadataFiles {
		if present[name] {
			plan.files = append(plan.files, name)
		}
	}
	switch {
	case present[safetensorsFile]:
		plan.files = append(plan.files, safetensorsFile)
	case present[safetensorsIndexFile]:
		plan.files = append(plan.files, safetensorsIndexFile)
		plan.index = safetensorsIndexFile
	default:
		return downloadPlan{}, fmt.Errorf("no %s or %s in the repository: only safetensors checkpoints are supported", safetensorsFile, safetensorsIndexFile)
	}
	return plan, nil
}

// shardNames reads a safetensors index and returns the distinct shard files
// its weight_map names, sorted.
func shardNames(indexPath string) ([]string, error) {
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, err
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", indexPath, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors index %s: empty weight_map", indexPath)
	}
	seen := map[string]bool{}
	var shards []string
	for tensor, shard := range index.WeightMap {
		if !isSafeRepoPath(shard) {
			return nil, fmt.Errorf("safetensors index %s: tensor %s names shard %q outside the snapshot", indexPath, tensor, shard)
		}
		if !seen[shard] {
			seen[shard] = true
			shards = append(shards, shard)
		}
	}
	sort.Strings(shards)
	return shards, nil
}

// isSafeRepoPath reports whether a repository file name stays inside the
// snapshot folder once joined to it.
func isSafeRepoPath(name string) bool {
	return name != "" && !strings.Contains(name, "\\") && filepath.IsLocal(filepath.FromSlash(name))
}

// missingFiles names what a snapshot folder lacks to load BLIP-2: config,
// image processor config, a tokenizer, and complete safetensors weights.
// Files may be symlinks into the blob store or plain files.
func missingFiles(snapshot string) []string {
	exists := func(name string) bool {
		info, err := os.Stat(filepath.Join(snapshot, filepath.FromSlash(name)))
		return err == nil && info.Mode().IsRegular()
	}
	var missing []string
	for _, name := range []string{configFile, preprocessorFile} {
		if !exists(name) {
			missing = append(missing, name)
		}
	}
	hasTokenizer := false
	for _, name := range tokenizerFiles {
		hasTokenizer = hasTokenizer || exists(name)
	}
	if !hasTokenizer {
		missing = append(missing, "a tokenizer ("+strings.Join(tokenizerFiles, " or ")+")")
	}
	switch {
	case exists(safetensorsFile):
	case exists(safetensorsIndexFile):
		shards, err := shardNames(filepath.Join(snapshot, safetensorsIndexFile))
		if err != nil {
			missing = append(missing, safetensorsIndexFile+" (unreadable)")
			break
		}
		for _, shard := range shards {
			if !exists(shard) {
				missing = append(missing, shard)
			}
		}
	default:
		missing = append(missing, safetensorsFile+" or "+safetensorsIndexFile)
	}
	return missing
}
