# Offline checks of the Kubernetes manifests in deploy/k8s (issue 18), ctest label "deploy": each
# overlay rendered with `kubectl kustomize`, validated against the pinned API schemas and Quarry's
# policy (deploy/k8s/check/check_manifests.py), and the checks' own tests (each breaks one thing
# and expects the error naming it). No cluster, no network, no containers. Needs kubectl >= 1.27
# (with kustomize) and python3-yaml / python3-jsonschema (scripts/setup.sh).
# Included from tests/CMakeLists.txt.
find_program(QUARRY_KUBECTL kubectl)
if(NOT QUARRY_KUBECTL)
  set(QUARRY_KUBECTL kubectl)  # the tests then fail, saying kubectl is missing
endif()
set(_quarry_k8s ${CMAKE_SOURCE_DIR}/deploy/k8s)
foreach(_dir overlays/cpu overlays/cuda overlays/rocm examples/models-from-object-store)
  string(REGEX REPLACE "^.*/" "" _name "${_dir}")
  add_test(NAME deploy_k8s_${_name}
           COMMAND python3 ${_quarry_k8s}/check/check_manifests.py --kubectl ${QUARRY_KUBECTL}
                   ${_quarry_k8s}/${_dir})
  set_tests_properties(deploy_k8s_${_name} PROPERTIES LABELS deploy TIMEOUT 120)
endforeach()
add_test(NAME deploy_k8s_check_selftest
         COMMAND python3 -m unittest -v test_check_manifests
         WORKING_DIRECTORY ${_quarry_k8s}/check)
set_tests_properties(deploy_k8s_check_selftest PROPERTIES LABELS deploy TIMEOUT 120
                     ENVIRONMENT "QUARRY_KUBECTL=${QUARRY_KUBECTL};PYTHONDONTWRITEBYTECODE=1")
