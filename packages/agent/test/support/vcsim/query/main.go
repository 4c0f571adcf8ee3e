// Command query reads and changes a vSphere host (the vcsim launcher's) with govmomi, so that
// Pallas tests can check what the esxi driver did, and make changes "outside Pallas", without
// going through the driver under test. Output is JSON on stdout; errors go to stderr, exit 1.
//
//	query -url URL -user U -password P vms
//	query ... datastores
//	query ... power-on|power-off|destroy NAME
//	query ... rename NAME NEWNAME
//	query ... rename-id MOREF NEWNAME   (by managed object id: any name, even one a path cannot spell)
//	query ... create NAME CPUS MEMORY_MB
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type disk struct {
	CapacityKB int64  `json:"capacityKB"`
	Datastore  string `json:"datastore"`
	FileName   string `json:"fileName"`
}

type vm struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PowerState string   `json:"powerState"`
	Vcpus      int32    `json:"vcpus"`
	MemoryMB   int32    `json:"memoryMB"`
	GuestOs    string   `json:"guestOs"`
	Disks      []disk   `json:"disks"`
	Networks   []string `json:"networks"`
}

type datastore struct {
	Name     string `json:"name"`
	Capacity int64  `json:"capacity"`
	Free     int64  `json:"free"`
}

func main() {
	rawURL := flag.String("url", "", "SDK URL, https://127.0.0.1:port/sdk")
	user := flag.String("user", "root", "user")
	password := flag.String("password", "", "password")
	flag.Parse()
	args := flag.Args()
	if *rawURL == "" || len(args) == 0 {
		fail("usage: query -url URL -user U -password P vms|datastores|power-on|power-off|destroy|rename|create ...")
	}
	u, err := url.Parse(*rawURL)
	if err != nil {
		fail("bad url: %v", err)
	}
	u.User = url.UserPassword(*user, *password)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A test tool talking to the local simulator: no certificate check.
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		fail("connect: %v", err)
	}
	defer c.Logout(ctx)
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		fail("datacenter: %v", err)
	}
	finder.SetDatacenter(dc)

	need := func(n int) {
		if len(args) < n+1 {
			fail("%s needs %d argument(s)", args[0], n)
		}
	}
	findVM := func(name string) *object.VirtualMachine {
		v, err := finder.VirtualMachine(ctx, name)
		if err != nil {
			fail("find vm %q: %v", name, err)
		}
		return v
	}
	wait := func(t *object.Task, err error) {
		if err != nil {
			fail("%s: %v", args[0], err)
		}
		if err := t.Wait(ctx); err != nil {
			fail("%s: %v", args[0], err)
		}
		emit(map[string]bool{"ok": true})
	}

	switch args[0] {
	case "vms":
		emit(listVMs(ctx, c, finder))
	case "datastores":
		dss, err := finder.DatastoreList(ctx, "*")
		if err != nil {
			fail("datastores: %v", err)
		}
		out := []datastore{}
		for _, ds := range dss {
			var m mo.Datastore
			if err := ds.Properties(ctx, ds.Reference(), []string{"summary"}, &m); err != nil {
				fail("datastore: %v", err)
			}
			out = append(out, datastore{Name: m.Summary.Name, Capacity: m.Summary.Capacity, Free: m.Summary.FreeSpace})
		}
		emit(out)
	case "power-on":
		need(1)
		wait(findVM(args[1]).PowerOn(ctx))
	case "power-off":
		need(1)
		wait(findVM(args[1]).PowerOff(ctx))
	case "destroy":
		need(1)
		wait(findVM(args[1]).Destroy(ctx))
	case "rename":
		need(2)
		wait(findVM(args[1]).Rename(ctx, args[2]))
	case "rename-id":
		need(2)
		vm := object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: args[1]})
		wait(vm.Rename(ctx, args[2]))
	case "create":
		need(3)
		cpus, _ := strconv.Atoi(args[2])
		mem, _ := strconv.Atoi(args[3])
		folders, err := dc.Folders(ctx)
		if err != nil {
			fail("folders: %v", err)
		}
		pool, err := finder.DefaultResourcePool(ctx)
		if err != nil {
			fail("pool: %v", err)
		}
		ds, err := finder.DefaultDatastore(ctx)
		if err != nil {
			fail("datastore: %v", err)
		}
		spec := types.VirtualMachineConfigSpec{
			Name:     args[1],
			NumCPUs:  int32(cpus),
			MemoryMB: int64(mem),
			GuestId:  string(types.VirtualMachineGuestOsIdentifierOtherGuest),
			Files:    &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", ds.Name())},
		}
		wait(folders.VmFolder.CreateVM(ctx, spec, pool, nil))
	default:
		fail("unknown command %q", args[0])
	}
}

func listVMs(ctx context.Context, c *govmomi.Client, finder *find.Finder) []vm {
	out := []vm{}
	refs, err := finder.VirtualMachineList(ctx, "*")
	if err != nil {
		if _, ok := err.(*find.NotFoundError); ok {
			return out
		}
		fail("vms: %v", err)
	}
	for _, r := range refs {
		var m mo.VirtualMachine
		if err := r.Properties(ctx, r.Reference(), []string{"name", "runtime.powerState", "config", "network"}, &m); err != nil {
			fail("vm: %v", err)
		}
		v := vm{ID: r.Reference().Value, Name: m.Name, PowerState: string(m.Runtime.PowerState), Disks: []disk{}, Networks: []string{}}
		if m.Config != nil {
			v.Vcpus = m.Config.Hardware.NumCPU
			v.MemoryMB = m.Config.Hardware.MemoryMB
			v.GuestOs = m.Config.GuestFullName
			for _, d := range m.Config.Hardware.Device {
				vd, ok := d.(*types.VirtualDisk)
				if !ok {
					continue
				}
				dk := disk{CapacityKB: vd.CapacityInKB}
				if b, ok := vd.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					info := b.GetVirtualDeviceFileBackingInfo()
					dk.FileName = info.FileName
					if info.Datastore != nil {
						var ds mo.Datastore
						if err := r.Properties(ctx, *info.Datastore, []string{"name"}, &ds); err == nil {
							dk.Datastore = ds.Name
						}
					}
				}
				v.Disks = append(v.Disks, dk)
			}
		}
		for _, n := range m.Network {
			var net mo.Network
			if err := r.Properties(ctx, n, []string{"name"}, &net); err == nil {
				v.Networks = append(v.Networks, net.Name)
			}
		}
		out = append(out, v)
	}
	return out
}

func emit(v interface{}) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vcsim query: "+format+"\n", args...)
	os.Exit(1)
}
